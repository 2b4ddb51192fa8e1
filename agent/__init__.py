"""The LangGraph discovery loop, its proposers (offline, LLM), the LLM client and its replay cache."""
