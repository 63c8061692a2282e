"""Model routing and Ollama support for Timestep agents.

- `MultiModelProvider` / `MultiModelProviderMap`: pick a provider by model-name prefix
  (`gpt-4.1`, `openai/...`, `ollama/...`, your own prefixes).
- `OllamaModelProvider` / `OllamaModel`: the Agents SDK model interface on Ollama, local or
  Ollama Cloud.
- `configure_tracing_for_keys()`: export traces to OpenAI only when an OpenAI key exists.
"""

from ._ollama_client import OLLAMA_CLOUD_URL, OLLAMA_LOCAL_URL
from .multi_provider import (
    MultiModelProvider,
    MultiModelProviderMap,
    UnknownModelPrefixError,
)
from .ollama_model import OllamaModel
from .ollama_provider import OllamaModelProvider
from .tracing import configure_tracing_for_keys

__all__ = [
    "OLLAMA_CLOUD_URL",
    "OLLAMA_LOCAL_URL",
    "MultiModelProvider",
    "MultiModelProviderMap",
    "OllamaModel",
    "OllamaModelProvider",
    "UnknownModelPrefixError",
    "configure_tracing_for_keys",
]
