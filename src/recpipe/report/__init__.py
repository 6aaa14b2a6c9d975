"""Report stage: what shoppers did with what they were shown (``recpipe report``).

``attribution`` joins the lake's impressions with the events that point back at them (pure
SQL over Arrow tables) and gives click-through, add-to-cart and purchase rates with 95%
intervals; ``pipeline.run`` reads the datasets and states how fresh the figures are.
"""
