"""The vLLM-server client against a real HTTP server on 127.0.0.1. The server is a stand-in for `vllm serve`
(vLLM cannot run here): it speaks the same OpenAI-compatible routes and records what the client sent."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lighteval.tasks.requests import Doc

from eval.backends import OpenAICompatibleModel


class StandInVLLMServer(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.received.append((self.path, body))
        if self.path == "/v1/completions":
            choices = [{"index": i, "text": f"    return {i}\ndef other():\n"} for i in range(body["n"])]
        else:
            choices = [
                {"index": i, "message": {"role": "assistant", "content": "```python\nx = 1\n```"}}
                for i in range(body["n"])
            ]
        payload = json.dumps({"choices": choices}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def test_client_sends_samples_stops_and_routes_by_mode():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInVLLMServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        model = OpenAICompatibleModel(f"http://127.0.0.1:{server.server_address[1]}", "seed-coder", temperature=0.8)
        base = Doc(query="def f():\n", choices=[""], gold_index=0, specific={"mode": "base"})
        base.num_samples, base.stop_sequences, base.generation_size = 3, ["\ndef "], 64
        chat = Doc(query="Write f.", choices=[""], gold_index=0, specific={"mode": "instruct"})
        chat.num_samples, chat.generation_size = 2, 128
        responses = model.greedy_until([base, chat])
    finally:
        server.shutdown()
    # stop sequences are applied (also client-side), n samples come back
    assert responses[0].text == ["    return 0", "    return 1", "    return 2"]
    assert responses[1].text == ["```python\nx = 1\n```"] * 2
    routes = dict(StandInVLLMServer.received)
    assert routes["/v1/completions"]["n"] == 3 and routes["/v1/completions"]["stop"] == ["\ndef "]
    assert routes["/v1/completions"]["max_tokens"] == 64 and routes["/v1/completions"]["temperature"] == 0.8
    assert routes["/v1/chat/completions"]["messages"][-1] == {"role": "user", "content": "Write f."}
