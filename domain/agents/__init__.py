"""The agents context: configured LLM agents and the runs they execute."""
