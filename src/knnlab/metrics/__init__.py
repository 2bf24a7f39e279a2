"""knnlab.metrics"""
