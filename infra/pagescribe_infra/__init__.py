"""CDK constructs for pagescribe on SageMaker: one construct per concern, composed by ``stack.py``."""
