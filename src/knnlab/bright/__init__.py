"""knnlab.bright"""
