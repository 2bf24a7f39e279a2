"""knnlab.n3"""
