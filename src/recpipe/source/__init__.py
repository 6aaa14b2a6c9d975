"""Source stage: the shop's transactional database (classicmodels + ratings).

``generate`` makes synthetic shops with planted structure (the tables are
``recpipe.contracts.source``); ``dump`` loads a real classicmodels MySQL dump; ``ratings``
derives ratings from purchases. Writing to a database goes through an adapter from
``recpipe.adapters``.
"""
