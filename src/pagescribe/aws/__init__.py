"""AWS helpers: package a model to S3, deploy it with boto3, and call a deployed SageMaker endpoint.

boto3 is imported lazily inside the functions that need it, so importing this package stays cheap.
"""
