"""Routing by model name: MultiModelProvider prefixes and OllamaModelProvider host/key choice."""

from __future__ import annotations

import pytest
from agents import Agent, Runner
from agents.exceptions import UserError
from agents.models.interface import Model, ModelProvider
from agents.models.multi_provider import MultiProvider, MultiProviderMap
from agents.models.openai_chatcompletions import OpenAIChatCompletionsModel
from agents.models.openai_responses import OpenAIResponsesModel
from agents.run import RunConfig

from tests.fake_ollama import (
    FakeOllama,
    text_reply,
)
from timestep.errors import ModelError
from timestep.models import (
    OLLAMA_CLOUD_URL,
    OLLAMA_LOCAL_URL,
    MultiModelProvider,
    MultiModelProviderMap,
    OllamaModel,
    OllamaModelProvider,
    UnknownModelPrefixError,
    _ollama_client,
)


class _EchoProvider(ModelProvider):
    def __init__(self) -> None:
        self.requested: list[str | None] = []

    def get_model(self, model_name: str | None) -> Model:
        self.requested.append(model_name)
        return OllamaModel(f"echo-{model_name}", host="http://echo.invalid")


def test_built_on_the_sdk_classes() -> None:
    assert issubclass(MultiModelProvider, MultiProvider)
    assert issubclass(MultiModelProviderMap, MultiProviderMap)


def test_bare_and_openai_names_go_to_openai(ollama_env: None) -> None:
    provider = MultiModelProvider(openai_api_key="sk-test")
    for name in ("gpt-4.1", "openai/gpt-4.1"):
        model = provider.get_model(name)
        assert isinstance(model, OpenAIResponsesModel | OpenAIChatCompletionsModel)
        assert model.model == "gpt-4.1"


def test_ollama_prefix_routes_to_ollama_without_a_map_entry(ollama_env: None) -> None:
    provider = MultiModelProvider()
    model = provider.get_model("ollama/llama3.2")
    assert isinstance(model, OllamaModel)
    assert model.model == "llama3.2"
    assert model.host == OLLAMA_LOCAL_URL
    # The same built-in provider instance serves every ollama/ model.
    assert provider.ollama_provider is provider.ollama_provider
    assert isinstance(provider.ollama_provider, OllamaModelProvider)


def test_user_prefix_via_map_and_map_overrides_ollama(ollama_env: None) -> None:
    mine, my_ollama = _EchoProvider(), _EchoProvider()
    provider = MultiModelProvider(MultiModelProviderMap({"mine": mine, "ollama": my_ollama}))
    assert provider.get_model("mine/some/model").model == "echo-some/model"  # type: ignore[attr-defined]
    provider.get_model("ollama/llama3.2")
    assert mine.requested == ["some/model"]
    assert my_ollama.requested == ["llama3.2"]
    assert provider.ollama_provider is my_ollama


def test_unknown_prefix_lists_known_prefixes(ollama_env: None) -> None:
    provider = MultiModelProvider(MultiModelProviderMap({"mine": _EchoProvider()}))
    with pytest.raises(UnknownModelPrefixError) as caught:
        provider.get_model("nope/model-x")
    message = str(caught.value)
    assert "'nope'" in message and "'nope/model-x'" in message
    for prefix in ("openai", "ollama", "litellm", "any-llm", "mine"):
        assert prefix in message
    # Catchable both as a Timestep error and as the SDK's UserError.
    assert isinstance(caught.value, ModelError)
    assert isinstance(caught.value, UserError)
    assert caught.value.known_prefixes == ["openai", "ollama", "litellm", "any-llm", "mine"]


def test_unknown_prefix_model_id_mode_still_passes_through(ollama_env: None) -> None:
    provider = MultiModelProvider(openai_api_key="sk-test", unknown_prefix_mode="model_id")
    model = provider.get_model("openrouter/openai/gpt-4o")
    assert isinstance(model, OpenAIResponsesModel | OpenAIChatCompletionsModel)
    assert model.model == "openrouter/openai/gpt-4o"


def test_local_models_use_ollama_host_and_never_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "http://10.0.0.5:11434")
    monkeypatch.setenv("OLLAMA_API_KEY", "env-key")
    model = OllamaModelProvider(api_key="explicit-key").get_model("llama3.2")
    assert model.endpoint.host == "http://10.0.0.5:11434"
    assert model.endpoint.api_key is None
    assert model.endpoint.cloud is False


@pytest.mark.parametrize(
    ("name", "sent"),
    [
        ("gpt-oss:120b-cloud", "gpt-oss:120b"),
        ("qwen3-coder:480b-cloud", "qwen3-coder:480b"),
        ("kimi-k2:cloud", "kimi-k2"),
    ],
)
def test_cloud_models_go_to_ollama_com_stripped_with_key(
    ollama_env: None, monkeypatch: pytest.MonkeyPatch, name: str, sent: str
) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "env-key")
    model = OllamaModelProvider().get_model(name)
    assert (model.model, model.endpoint.host) == (sent, OLLAMA_CLOUD_URL)
    assert model.endpoint.api_key == "env-key"
    assert model.endpoint.cloud is True
    # An explicit key wins over the environment.
    assert OllamaModelProvider(api_key="mine").get_model(name).endpoint.api_key == "mine"


def test_cloud_url_is_overridable(ollama_env: None) -> None:
    provider = OllamaModelProvider(api_key="k", cloud_url="http://127.0.0.1:9")
    model = provider.get_model("gpt-oss:120b-cloud")
    assert model.endpoint.host == "http://127.0.0.1:9"
    assert model.endpoint.cloud is True
    assert _ollama_client.OLLAMA_CLOUD_URL == "https://ollama.com"


def test_explicit_base_url_hosts_every_model_and_gets_the_key(ollama_env: None) -> None:
    provider = OllamaModelProvider(api_key="gw-key", base_url="http://gateway:8080")
    local, cloud = provider.get_model("llama3.2"), provider.get_model("gpt-oss:120b-cloud")
    assert local.endpoint.host == cloud.endpoint.host == "http://gateway:8080"
    assert local.endpoint.api_key == cloud.endpoint.api_key == "gw-key"
    # A gateway (or a local Ollama) resolves -cloud names itself.
    assert cloud.model == "gpt-oss:120b-cloud"
    # base_url pointing at Ollama Cloud itself applies the cloud rules.
    direct = OllamaModelProvider(api_key="k", base_url="https://ollama.com/")
    assert direct.get_model("gpt-oss:120b-cloud").model == "gpt-oss:120b"


def test_choice_is_per_model_not_cached(ollama_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_API_KEY", "k")
    provider = OllamaModelProvider()
    first_cloud = provider.get_model("gpt-oss:120b-cloud")
    local = provider.get_model("llama3.2")
    second_cloud = provider.get_model("kimi-k2:cloud")
    assert (first_cloud.endpoint.host, local.endpoint.host, second_cloud.endpoint.host) == (
        OLLAMA_CLOUD_URL,
        OLLAMA_LOCAL_URL,
        OLLAMA_CLOUD_URL,
    )


def test_no_model_name_is_a_clear_error(ollama_env: None) -> None:
    with pytest.raises(UserError, match="needs a model name"):
        OllamaModelProvider().get_model(None)


async def test_clients_are_lazy_and_shared(
    local_ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[str] = []
    real = _ollama_client.make_client

    def counting(endpoint: _ollama_client.OllamaEndpoint) -> object:
        built.append(endpoint.host)
        return real(endpoint)

    monkeypatch.setattr(_ollama_client, "make_client", counting)
    provider = MultiModelProvider()
    agent = Agent(name="a", model="ollama/llama3.2")
    provider.get_model("ollama/llama3.2")
    provider.get_model("ollama/gpt-oss:120b-cloud")
    assert built == []  # nothing is built until a model is called
    assert local_ollama.requests == []

    local_ollama.add(text_reply("one"), text_reply("two"))
    config = RunConfig(model_provider=provider, tracing_disabled=True)
    assert (await Runner.run(agent, "hi", run_config=config)).final_output == "one"
    assert (await Runner.run(agent, "hi", run_config=config)).final_output == "two"
    assert built == [local_ollama.url]  # one client, reused across calls
    await provider.aclose()
