"""Entry points run by other systems (AWS Glue); they read settings and call stage code."""
