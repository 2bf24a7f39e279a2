"""knnlab.hubness"""
