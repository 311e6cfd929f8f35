"""Make a LOBSTER zip of "another symbol" from a real one, for scoring a model on a book it has
never seen (issue 13, ``bestex score``).

    .venv/bin/python benchmarks/make_lobster_variant.py SRC.zip OUT_DIR [--symbol XMPL]
        [--price-factor 0.25] [--size-factor 4]

The transformation, documented so the figures can be reproduced:

* the symbol is renamed (``AMZN`` -> ``XMPL``) in the member names and the zip name;
* every price (message ``price`` and each order-book price level, in USD x 10000) is multiplied by
  ``--price-factor`` and rounded to an integer (a $220 stock becomes a $55 one; its tick of
  $0.01 becomes $0.0025, so spreads in bps are unchanged and spreads in ticks are 4x);
* every size (message ``size`` and each order-book size) is multiplied by ``--size-factor`` (the
  notional traded is unchanged at the defaults: 0.25 x 4 = 1);
* empty levels (+-9999999999) and times, event types, order ids and directions are kept.

The result is a new price level, a new share count per order and a new tick grid on the real
order flow of the day: nothing a model trained on the synthetic desk or on AMZN has seen as such.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

EMPTY = 9_999_999_999


def _scale(values: np.ndarray, factor: float) -> np.ndarray:
    empty = np.abs(values) == EMPTY
    return np.where(empty, values, np.round(values * factor).astype(np.int64))


def transform(src: Path, out_dir: Path, symbol: str, price_factor: float,
              size_factor: float) -> Path:
    with zipfile.ZipFile(src) as z:
        members = [n for n in z.namelist() if n.endswith(".csv")]
        old = members[0].split("_", 1)[0]
        out_dir.mkdir(parents=True, exist_ok=True)
        out = out_dir / src.name.replace(old, symbol)
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as w:
            for name in members:
                df = pd.read_csv(io.BytesIO(z.read(name)), header=None)
                if "_message_" in name:  # time, type, order_id, size, price, direction
                    df[3] = np.round(df[3] * size_factor).astype(np.int64)
                    df[4] = _scale(df[4].to_numpy(np.int64), price_factor)
                else:  # ask_px, ask_sz, bid_px, bid_sz per level
                    for c in df.columns:
                        v = df[c].to_numpy(np.int64)
                        df[c] = (_scale(v, price_factor) if c % 2 == 0
                                 else np.round(v * size_factor).astype(np.int64))
                w.writestr(name.replace(old, symbol), df.to_csv(header=False, index=False))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--symbol", default="XMPL")
    ap.add_argument("--price-factor", type=float, default=0.25)
    ap.add_argument("--size-factor", type=float, default=4.0)
    a = ap.parse_args()
    print(transform(a.src, a.out_dir, a.symbol, a.price_factor, a.size_factor))


if __name__ == "__main__":
    main()
