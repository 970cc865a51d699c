"""LLM providers behind one port: OpenAI (and any OpenAI-compatible server), Anthropic, a scripted one."""
