"""Cost of sealing a parcel.deposited secret (X25519 + HKDF + AES-GCM, ADR 0110) per deposit,
beside what a deposit already spent on its secrets before (HMAC of the code and a pickup
token), measured in the same run.

    .venv/bin/python bench/sealing.py [--quick]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey  # noqa: E402

from edge.identity.sealing import seal, unseal  # noqa: E402
from edge.identity.tokens import PickupTokenCodec  # noqa: E402
from edge.locker.codes import PickupCodes  # noqa: E402


def per_call_us(run, rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    rounds = 300 if parser.parse_args().quick else 3000
    platform = X25519PrivateKey.generate()
    codes, tokens = PickupCodes(b"k" * 32), PickupTokenCodec(b"t" * 32)
    due = datetime.now(timezone.utc) + timedelta(hours=72)

    def baseline() -> None:
        code = codes.new_code()
        codes.digest(code)
        tokens.issue("par-0123456789abcdef", 12, due)

    secret = {"pickup_code": "12345678", "pickup_token": tokens.issue("par-0123456789abcdef", 12, due)}
    message_id = str(uuid.uuid4())
    sealed = seal(platform.public_key(), secret, message_id)
    base_p50, base_p99 = per_call_us(baseline, rounds)
    seal_p50, seal_p99 = per_call_us(lambda: seal(platform.public_key(), secret, message_id), rounds)
    open_p50, open_p99 = per_call_us(lambda: unseal(platform, sealed, message_id), rounds)
    print(f"sealing a pickup secret, {rounds} rounds each                    p50 us   p99 us")
    print(f"baseline: new code + HMAC + pickup token (per deposit)        {base_p50:8.1f} {base_p99:8.1f}")
    print(f"seal (edge, per parcel.deposited)                             {seal_p50:8.1f} {seal_p99:8.1f}")
    print(f"unseal (platform side)                                        {open_p50:8.1f} {open_p99:8.1f}")
    print(f"seal / baseline (p50): {seal_p50 / base_p50:.1f}x; sealed secret {len(sealed)} characters on the wire")


if __name__ == "__main__":
    main()
