"""Source stage: the shop's transactional database (classicmodels + ratings).

``schema`` defines the tables once; ``generate`` makes synthetic shops with planted
structure; ``dump`` loads a real classicmodels MySQL dump; ``ratings`` derives ratings from
purchases. Writing to a database goes through an adapter from ``recpipe.adapters``.
"""
