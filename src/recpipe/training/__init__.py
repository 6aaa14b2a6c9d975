"""Training: the two-tower recommender on the lake's training dataset.

``dataset`` reads and checks the data and splits it, ``inputs`` encodes it, ``model`` is the
PyTorch network, ``objectives`` say what it learns (retrieval: which products customers choose;
rating: the seed's rating regression), ``fit`` is the loop, ``retrieval`` / ``rating`` run
an objective end to end, ``evaluate`` and ``baselines`` judge it on held-out data,
``artifacts`` writes what serving needs and ``pipeline`` runs it all and publishes. torch is
imported only by ``model`` and the modules that train.
"""
