"""The read side: projectors, read models and the queries over them."""
