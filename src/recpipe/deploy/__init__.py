"""Deployment: building what AWS runs (``package``); Terraform in ``terraform/`` points at it."""
