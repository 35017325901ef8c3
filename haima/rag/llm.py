"""A client for any OpenAI-compatible chat completions endpoint (OpenAI, DeepSeek,
DashScope/百炼, vLLM, Ollama, llama.cpp ...), streaming or not, over httpx.

    llm = ChatModel(base_url="http://localhost:11434/v1", model="qwen2.5")
    llm = ChatModel()   # from HAIMA_LLM_BASE_URL, HAIMA_LLM_MODEL and HAIMA_LLM_API_KEY
    text = llm.chat([{"role": "user", "content": "你好"}], on_token=print)
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import httpx

from haima.embeddings._http import error_message
from haima.errors import HaimaError

ENV_BASE_URL = "HAIMA_LLM_BASE_URL"
ENV_MODEL = "HAIMA_LLM_MODEL"
ENV_API_KEY = "HAIMA_LLM_API_KEY"

TokenCallback = Callable[[str], None]
Message = Mapping[str, str]


class LLMNotConfiguredError(HaimaError, ValueError):
    """No chat model was given and the environment names none."""

    status_code = 400


class LLMError(HaimaError):
    """The chat model could not be reached or answered with an error."""

    status_code = 502

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


def not_configured(missing: Sequence[str]) -> LLMNotConfiguredError:
    return LLMNotConfiguredError(
        f"no chat model configured ({' and '.join(missing)} missing): pass "
        "llm=ChatModel(base_url=..., model=...) (on the command line --base-url and "
        f"--model), or set {ENV_BASE_URL} and {ENV_MODEL} (and {ENV_API_KEY} if the "
        "provider needs a key). Retrieval alone needs no LLM: use "
        "collection.query(query_texts=[...]), haima.rag.retrieve() or `haima search`."
    )


_HINTS = {
    401: " (check the API key: api_key=, --api-key or " + ENV_API_KEY + ")",
    403: " (check the API key's permissions)",
    404: " (check base_url and the model name)",
}


class ChatModel:
    """An OpenAI-compatible chat model. Arguments left out come from the environment:
    `HAIMA_LLM_BASE_URL`, `HAIMA_LLM_MODEL`, and for the key `api_key`, else the variable
    named by `api_key_env`, else `HAIMA_LLM_API_KEY` (a local server may need none).

    temperature, max_tokens: sent when given. extra_body: more request fields
    ({"top_p": 0.9}). timeout: seconds to wait for the first byte and between chunks."""

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        timeout: float = 120.0,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        base_url = base_url or os.environ.get(ENV_BASE_URL) or None
        model = model or os.environ.get(ENV_MODEL) or None
        missing = [
            name
            for name, value in (("base_url", base_url), ("model", model))
            if value is None or not value.strip()
        ]
        if missing or base_url is None or model is None:
            raise not_configured(missing)
        if api_key is None and api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise LLMNotConfiguredError(
                    f"api_key_env={api_key_env!r}: that environment variable is not set"
                )
        if api_key is None:
            api_key = os.environ.get(ENV_API_KEY) or None
        url = base_url.strip().rstrip("/")
        self.base_url = url.removesuffix("/chat/completions")
        self.model = model.strip()
        self.api_key_env = api_key_env
        self._api_key = api_key
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.extra_body = dict(extra_body or {})

    def __repr__(self) -> str:  # never shows the key
        return f"ChatModel(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def chat(
        self,
        messages: Sequence[Message],
        *,
        on_token: TokenCallback | None = None,
        stream: bool | None = None,
    ) -> str:
        """The model's reply to `messages`. With `on_token` (or stream=True) the reply is
        streamed and each piece of text passed to `on_token` as it arrives."""
        streaming = on_token is not None if stream is None else stream
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in messages],
            "stream": streaming,
            **self.extra_body,
        }
        if self.temperature is not None:
            payload["temperature"] = self.temperature
        if self.max_tokens is not None:
            payload["max_tokens"] = self.max_tokens
        headers = {"Content-Type": "application/json", **self.headers}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        if streaming:
            headers["Accept"] = "text/event-stream"
        try:
            with (
                httpx.Client(timeout=self.timeout) as client,
                client.stream("POST", self.url, json=payload, headers=headers) as response,
            ):
                if response.status_code >= 400:
                    raise self._http_error(response.status_code, response.read())
                kind = response.headers.get("content-type", "")
                if streaming and "text/event-stream" in kind:
                    return self._read_stream(response.iter_lines(), on_token)
                # not streamed (asked so, or a server that ignores "stream")
                reply = self._message(_json(response.read(), self.url))
                if on_token is not None and reply:
                    on_token(reply)
                return reply
        except httpx.TimeoutException as exc:
            raise LLMError(
                f"the chat model at {self.url} did not answer within {self.timeout:g}s "
                f"({type(exc).__name__})",
                url=self.url,
            ) from exc
        except httpx.HTTPError as exc:
            raise LLMError(
                f"could not reach the chat model at {self.url}: {type(exc).__name__}: {exc}",
                url=self.url,
            ) from exc

    # -- answers ----------------------------------------------------------------------------

    def _http_error(self, status: int, body: bytes) -> LLMError:
        return LLMError(
            f"the chat model {self.model!r} at {self.url} answered HTTP {status}: "
            f"{error_message(body)}{_HINTS.get(status, '')}",
            url=self.url,
            status=status,
        )

    def _message(self, data: Any) -> str:
        self._raise_in_band(data)
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(
                f"the chat model at {self.url} answered without choices[0].message.content: "
                f"{json.dumps(data, ensure_ascii=False)[:300]}",
                url=self.url,
            ) from exc
        return content if isinstance(content, str) else ""

    def _raise_in_band(self, data: Any) -> None:
        """Some providers report errors inside a 200 answer or stream."""
        if isinstance(data, dict) and data.get("error"):
            raise LLMError(
                f"the chat model {self.model!r} at {self.url} answered an error: "
                f"{error_message(json.dumps(data).encode())}",
                url=self.url,
            )

    def _read_stream(self, lines: Iterable[str], on_token: TokenCallback | None) -> str:
        """Server-sent events: `data:` lines (several make one event), a blank line ends
        an event, `data: [DONE]` ends the stream."""
        parts: list[str] = []
        data: list[str] = []

        def dispatch() -> bool:
            payload = "\n".join(data)
            data.clear()
            if not payload:
                return True
            if payload.strip() == "[DONE]":
                return False
            event = _json(payload.encode(), self.url)
            self._raise_in_band(event)
            for choice in (event.get("choices") or []) if isinstance(event, dict) else []:
                delta = (choice.get("delta") or {}) if isinstance(choice, dict) else {}
                piece = delta.get("content") if isinstance(delta, dict) else None
                if isinstance(piece, str) and piece:
                    parts.append(piece)
                    if on_token is not None:
                        on_token(piece)
            return True

        for line in lines:
            if not line:
                if not dispatch():
                    break
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            # "event:", "id:", "retry:" and ":" comments carry nothing we need
        else:
            dispatch()
        return "".join(parts)


def _json(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        text = body.decode("utf-8", errors="replace")[:300]
        raise LLMError(
            f"the chat model at {url} answered something that is not JSON: {text!r}", url=url
        ) from exc
