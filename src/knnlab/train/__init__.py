"""knnlab.train"""
