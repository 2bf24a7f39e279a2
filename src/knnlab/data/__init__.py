"""knnlab.data"""
