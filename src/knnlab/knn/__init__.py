"""knnlab.knn"""
