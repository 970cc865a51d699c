"""The HTTP edge shared by the command API, the query API and the BFF: auth, limits, problems."""
