"""Training: the two-tower recommender on the lake's training dataset (DESIGN.md §5).

``dataset`` reads and checks the data, ``model`` is the PyTorch network, ``fit`` trains it,
``evaluate`` scores it on held-out ratings, ``artifacts`` writes what serving needs and
``pipeline`` runs them in order and publishes. torch is imported only by ``model``/``fit``.
"""
