"""A labelled sample of chat-traffic texts for PII precision/recall (written for this test set).

Each entry: (text, [(type, value), ...]) where the list is every personal value a scrubber must hide.
Hard negatives (code, loopback IPs, dates, times, timestamps, ranges, versions, order ids) expect [].
"""

from __future__ import annotations

SAMPLES: list[tuple[str, list[tuple[str, str]]]] = [
    # --- positives -------------------------------------------------------------------------------
    (
        "Hi, I'm Dana, reach me at dana.whitfield@gmail.com about my refund.",
        [("email", "dana.whitfield@gmail.com")],
    ),
    ("My cell is +1 (646) 555-0182, evenings only.", [("phone", "+1 (646) 555-0182")]),
    ("Please call back on 020 7946 0958.", [("phone", "020 7946 0958")]),
    (
        "New number: 312-555-0147 (old one was 312-555-0199).",
        [("phone", "312-555-0147"), ("phone", "312-555-0199")],
    ),
    ("Charge it to 4539 1488 0343 6467, exp 11/27.", [("card", "4539 1488 0343 6467")]),
    ("Card number 5555555555554444 was declined twice", [("card", "5555555555554444")]),
    ("Wire it to NL91ABNA0417164300 please", [("iban", "NL91ABNA0417164300")]),
    ("IBAN: DE89 3704 0044 0532 0130 00", [("iban", "DE89 3704 0044 0532 0130 00")]),
    ("SSN 078-05-1120 for the tax form", [("national_id", "078-05-1120")]),
    ("my passport number is K43918827", [("national_id", "K43918827")]),
    (
        "Login attempts came from 203.0.113.57 and 198.51.100.23 overnight.",
        [("ip", "203.0.113.57"), ("ip", "198.51.100.23")],
    ),
    ("Customer's home router is 84.17.44.201, can you whitelist it?", [("ip", "84.17.44.201")]),
    (
        "Send the invoice to ap@northwind-traders.co.uk and cc me: j.ortiz@northwind-traders.co.uk",
        [("email", "ap@northwind-traders.co.uk"), ("email", "j.ortiz@northwind-traders.co.uk")],
    ),
    ("Text me on +44 7700 900123 when the parcel ships", [("phone", "+44 7700 900123")]),
    ("In the config I set `admin_email = ops.lead@acme.io` for alerts", [("email", "ops.lead@acme.io")]),
    ("Order 88231 for Maria, phone 415.555.0139, deliver after 18:00.", [("phone", "415.555.0139")]),
    ("Refund to card 3782 822463 10005 on 2024-03-04.", [("card", "3782 822463 10005")]),
    # --- hard negatives --------------------------------------------------------------------------
    ("CLUSTER ADDSLOTS: node A 0-5460, node B 5461-10922, node C 10923-16383", []),
    ("Slots 5461-10922 moved to 10.0.0.12? See `cluster nodes` output.", [("ip", "10.0.0.12")]),
    ("The outage lasted from 2024-01-15 09:30 to 2024-01-15 11:45 UTC.", []),
    ("Meeting moved to 07-12-2026 14:00, room 4.12.", []),
    ("Released 12/07/2026, build 20261207183045.", []),
    ('event ts=1733594445123 level=info msg="started"', []),
    ("trace 1733594445123456 took 312 ms", []),
    ("The server binds to 127.0.0.1:8080 in dev and 0.0.0.0:8080 in prod.", []),
    ("Use `curl http://127.0.0.1:6379` or `redis-cli -h 10.1.2.3 -p 6379`.", []),
    (
        '```python\napp.run(host="0.0.0.0", port=5000)\nREDIS = "redis://10.20.30.40:6379/0"\n'
        'PHONE_RE = r"\\d{3}-\\d{3}-\\d{4}"  # e.g. 212-555-0100\n```',
        [],
    ),
    ("```\n$ kubectl get pods -o wide\nweb-7d9f   1/1  Running  10.244.1.17  node-2\n```", []),
    ("upgrade from v4.12.0 to v4.13.2, then pip install numpy==2.4.6", []),
    ("Order ORD-2024-118273 shipped, tracking 1Z999AA10123456784.", []),
    ("Pages 120-245 cover the API; ports 8000-8100 are reserved.", []),
    ("It took 3 - 5 business days, total €1,234.56.", []),
    ("IPv6 loopback ::1 and link-local fe80::1 are fine in docs.", []),
    ("between 2023.11.01 and 2023.12.31 we had 4 incidents", []),
    ("UUID 123e4567-e89b-12d3-a456-426614174000 not found", []),
    ("Latency p50 120 ms, p99 1200 ms over 86400 s", []),
]
