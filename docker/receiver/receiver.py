"""A webhook receiver for the compose stack: it verifies each delivery's
Standard Webhooks signature, handles each webhook-id once, and logs the
event. See docs/webhooks.md."""

import json
import os
import sqlite3
import threading

from flask import Flask, abort, request
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

app = Flask(__name__)
wh = Webhook(os.environ["NOTIFIED_WEBHOOK_SECRET_ORDERS"])
db = sqlite3.connect("/tmp/receiver.db", check_same_thread=False)
db.execute("CREATE TABLE IF NOT EXISTS seen (webhook_id TEXT PRIMARY KEY)")
lock = threading.Lock()


def handle_order(event):
    print("order placed:", json.dumps(event["data"]), flush=True)


@app.post("/hooks/orders")
def orders():
    try:
        event = wh.verify(request.get_data(), dict(request.headers))
    except WebhookVerificationError as e:
        print("refused a delivery:", e, flush=True)
        abort(400)
    with lock, db:
        first = db.execute("INSERT OR IGNORE INTO seen VALUES (?)", (request.headers["webhook-id"],)).rowcount
        if first:
            handle_order(event)
        else:
            print("repeat of", request.headers["webhook-id"], "dropped", flush=True)
    return {"ok": True}


if __name__ == "__main__":
    app.run(host="0.0.0.0", port=8000)
