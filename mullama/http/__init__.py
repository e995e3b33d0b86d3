"""The HTTP front end: the Sanic app and the OpenAI, Anthropic and Ollama dialects."""
