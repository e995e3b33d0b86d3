# The README's API examples; tests/http/test_http_curl.py runs every one against a real daemon
# (with the test model standing in for llama3.2:1b).

# OpenAI: chat completion
curl http://localhost:8080/v1/chat/completions \
  -H "Content-Type: application/json" \
  -d '{
    "model": "llama3.2:1b",
    "messages": [
      {"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": "Hello!"}
    ],
    "max_tokens": 64,
    "temperature": 0.7
  }'

# OpenAI: streamed chat completion (server-sent events, ends with data: [DONE])
curl -N http://localhost:8080/v1/chat/completions \
  -H "Content-Type: application/json" \
  -d '{
    "model": "llama3.2:1b",
    "messages": [{"role": "user", "content": "Tell me a story"}],
    "max_tokens": 64,
    "stream": true,
    "stream_options": {"include_usage": true}
  }'

# OpenAI: text completion
curl http://localhost:8080/v1/completions \
  -H "Content-Type: application/json" \
  -d '{"model": "llama3.2:1b", "prompt": "Once upon a time", "max_tokens": 32}'

# OpenAI: embeddings
curl http://localhost:8080/v1/embeddings \
  -H "Content-Type: application/json" \
  -d '{"model": "llama3.2:1b", "input": "Hello, world!"}'

# OpenAI: list models (with capability flags)
curl http://localhost:8080/v1/models

# Anthropic: messages
curl http://localhost:8080/v1/messages \
  -H "Content-Type: application/json" \
  -H "anthropic-version: 2023-06-01" \
  -d '{
    "model": "llama3.2:1b",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hello, Claude!"}]
  }'

# Anthropic: streamed messages
curl -N http://localhost:8080/v1/messages \
  -H "Content-Type: application/json" \
  -d '{
    "model": "llama3.2:1b",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Tell me a story"}],
    "stream": true
  }'

# Anthropic: count tokens
curl http://localhost:8080/v1/messages/count_tokens \
  -H "Content-Type: application/json" \
  -d '{"model": "llama3.2:1b", "messages": [{"role": "user", "content": "Hello"}]}'

# Management: list models, show one, load and unload
curl http://localhost:8080/api/models
curl http://localhost:8080/api/models/llama3.2:1b
curl http://localhost:8080/api/models/load -d '{"name": "llama3.2:1b", "keep_alive": "10m"}'
curl http://localhost:8080/api/models/unload -d '{"name": "llama3.2:1b"}'

# Management: pull (NDJSON progress lines, then {"status": "success"})
curl http://localhost:8080/api/models/pull -d '{"name": "gemma3:270m"}'

# Management: delete
curl -X DELETE http://localhost:8080/api/models/my-model

# System status, health, Prometheus metrics
curl http://localhost:8080/api/system/status
curl http://localhost:8080/health
curl http://localhost:8080/metrics

# With an API key (mullama serve --api-key KEY, or MULLAMA_API_KEY)
curl http://localhost:8080/v1/models -H "Authorization: Bearer $MULLAMA_API_KEY"
curl http://localhost:8080/v1/models -H "x-api-key: $MULLAMA_API_KEY"
