"""A webhook receiver for the README walk-through: checks each Standard Webhooks signature with the
endpoint's secret and prints the event. The secret comes from the environment, not the command
line, where any user of the machine could read it (`ps`):

    WEBHOOK_SECRET=whsec_... python docs/examples/webhook_listener.py 9009
"""

import base64
import hashlib
import hmac
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET = base64.b64decode(os.environ["WEBHOOK_SECRET"].removeprefix("whsec_"))
PORT = int(sys.argv[1]) if len(sys.argv) > 1 else 9009


class Listener(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        signed = f"{self.headers['webhook-id']}.{self.headers['webhook-timestamp']}.".encode() + body
        expected = "v1," + base64.b64encode(hmac.new(SECRET, signed, hashlib.sha256).digest()).decode()
        valid = any(hmac.compare_digest(expected, s) for s in self.headers["webhook-signature"].split())
        event = json.loads(body)
        print(f"{'VALID' if valid else 'INVALID'} signature  {event['type']}  {json.dumps(event['data'], ensure_ascii=False)}")
        self.send_response(204 if valid else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", PORT), Listener).serve_forever()
