"""Register records benchmark: RecordTable size, build, load and lookup at N records.

    python -m bench.bench_records [--records 10000000] [--probes 1000000]

Generates N plausible records (masked Cyrillic names, unrz ids with ck), builds the
table, writes it to a file, loads it back from a read-only mmap (what a verifier
worker does), and times C-level lookups (present and absent keys) and whole link
verifications (parse + lookup + verdict) through fastpath._links.LinkChecker.
Prints one JSON object. Targets (issue 12): <= 96 bytes a record, lookup <= 1 us,
full load <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from fastpath._links import LinkChecker
from fastpath._records import RecordTable
from verifier.reasons import Reason
from verifier.verdict import Verdict

NAMES = [
    "И***** И*** И*******",
    "П****** А*** С*******",
    "С****** О***",
    "К********* Е******* В**********",
    "Ш******* Д***** А**********",
]
LATIN = [
    "I***** I*** I*******",
    "P****** A*** S*******",
    "S****** O***",
    "K********* E******* V**********",
    "S******* D***** A**********",
]
BASE_ID = 9_160_000_000_000_000


def records(n: int, seed: int = 1) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(seed)
    start = 1_625_086_800  # 2021-07-01 MSK
    for i in range(n):
        k = i % 5
        yield (
            f"{BASE_ID + i * 3}",
            rng.randbytes(16),
            i % 4,
            i % 50 == 0,
            start,
            start + 365 * 86400,
            NAMES[k],
            LATIN[k],
            f"{1940 + i % 60}-{1 + i % 12:02d}-{1 + i % 28:02d}",
            f"{10 + i % 90}** ***{i % 1000:03d}",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--probes", type=int, default=1_000_000)
    parser.add_argument("--links", type=int, default=200_000)
    args = parser.parse_args()
    n = args.records
    out: dict[str, Any] = {"records": n}

    t0 = time.perf_counter()
    table = RecordTable.from_records(records(n))
    out["build_s"] = round(time.perf_counter() - t0, 2)
    data = table.to_bytes()
    out["bytes"] = len(data)
    out["bytes_per_record"] = round(len(data) / n, 1)
    del table

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "records.bin")
        with open(path, "wb") as fh:
            fh.write(data)
        del data
        t0 = time.perf_counter()
        fh = open(path, "rb")  # noqa: SIM115 - kept open while mapped
        mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(mm)
        table = RecordTable(view)
        out["load_mmap_s"] = round(time.perf_counter() - t0, 4)
        t0 = time.perf_counter()
        RecordTable(open(path, "rb").read())  # noqa: SIM115 - a full read, for comparison
        out["load_read_s"] = round(time.perf_counter() - t0, 2)

        rng = random.Random(2)
        probes = args.probes
        present = b"".join(
            bytes(8) + (BASE_ID + rng.randrange(n) * 3).to_bytes(8, "big") for _ in range(probes)
        )
        absent = b"".join(
            bytes(8) + (BASE_ID + rng.randrange(n) * 3 + 1).to_bytes(8, "big")
            for _ in range(probes)
        )
        # first pass: pages of the mapping touched for the first time (minor faults);
        # second pass: the steady state of a worker that has been answering for a while
        for label in ("first_touch", "warm"):
            t0, c0 = time.perf_counter(), time.process_time()
            hits = table.count_present(present)
            out[f"lookup_present_ns_{label}"] = round((time.perf_counter() - t0) / probes * 1e9, 1)
            # CPU time: what the lookups cost when they are not waiting for a core
            out[f"lookup_present_cpu_ns_{label}"] = round(
                (time.process_time() - c0) / probes * 1e9, 1
            )
            t0, c0 = time.perf_counter(), time.process_time()
            misses = table.count_present(absent)
            out[f"lookup_absent_ns_{label}"] = round((time.perf_counter() - t0) / probes * 1e9, 1)
            out[f"lookup_absent_cpu_ns_{label}"] = round(
                (time.process_time() - c0) / probes * 1e9, 1
            )
        if hits != probes or misses != 0:
            raise SystemExit(
                f"lookup check failed: {hits} of {probes} present, {misses} absent found"
            )

        checker = LinkChecker(verdict=Verdict, reasons={r.value: r for r in Reason})
        now = 1_640_000_000
        base = "https://www.gosuslugi.ru/covid-cert/verify/"
        links = [
            f"{base}{BASE_ID + rng.randrange(n) * 3}?lang=ru&ck={'0' * 32}"
            for _ in range(args.links)
        ]
        missing = [
            f"{base}{BASE_ID + rng.randrange(n) * 3 + 2}?lang=ru&ck={'0' * 32}"
            for _ in range(args.links)
        ]
        for name, batch in (("verify_wrong_ck_ns", links), ("verify_missing_ns", missing)):
            verify = checker.verify
            t0 = time.perf_counter()
            for link in batch:
                verify(link, table, now)
            out[name] = round((time.perf_counter() - t0) / len(batch) * 1e9, 1)
        del table
        view.release()
        mm.close()
        fh.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
