"""The book's one number format (nine.book.numbers) and the claims ledger's measured/criterion digits."""

import math

import numpy as np
import pandas as pd
import pytest

from nine.book.claims import Claim
from nine.book.numbers import DASH, TABLE_CLASS, fmt, mean_std, styled


@pytest.mark.parametrize("value, text", [
    (0.5, "0.5"), (1.0, "1"), (10.0, "10"), (0.500000, "0.5"), (2429.0, "2,429"), (4.324349, "4.32"),
    (0.844000, "0.844"), (-0.5489694, "-0.549"), (5.195844e-14, "5.2e-14"), (-2.004254e-15, "-2e-15"),
    (0.000999, "0.000999"), (4.2e-05, "4.2e-05"), (0.001, "0.001"), (1.2e8, "120,000,000"), (np.float32(0.5), "0.5"), (np.int64(2000), "2,000"),
    (7, "7"), (0.0, "0"), (math.inf, "∞"), (-math.inf, "−∞"), (True, "yes"), (False, "no"),
    (float("nan"), DASH), (np.nan, DASH), (None, DASH), (pd.NA, DASH), ("0.067 ± 0.014", "0.067 ± 0.014"),
])
def test_every_number_prints_one_way(value, text):
    assert fmt(value) == text


def test_no_trailing_zeros_and_no_nan_whatever_the_digits():
    rng = np.random.default_rng(0)
    for x in np.concatenate([rng.normal(size=200), rng.lognormal(0, 4, size=200), [0.1, 0.25, 2.5, 100.0]]):
        for digits in (2, 3, 4, 6):
            text = fmt(float(x), digits)
            mantissa = text.split("e")[0]
            assert not ("." in mantissa and mantissa.endswith("0")), (x, digits, text)
            assert "nan" not in text.lower()
            if "e" not in text:  # the printed value is the number to its significant digits
                assert float(text.replace(",", "")) == pytest.approx(x, rel=10 ** (1 - digits), abs=0.5)


def test_mean_std_drops_an_undefined_spread():
    assert mean_std(0.0671, 0.0142) == "0.067 ± 0.014"  # the mean to the spread's second digit
    assert mean_std(2.17871, 0.0619) == "2.179 ± 0.062" and mean_std(0.0996, 0.0996) == "0.10 ± 0.10"
    assert mean_std(1234.5, 123.4) == "1,230 ± 120" and mean_std(0.5, 1e-6) == "0.5 ± 1e-06"
    assert mean_std(0.5, float("nan")) == "0.5" and mean_std(0.5, None) == "0.5"


def test_styled_formats_cells_and_index_and_wraps_prose():
    frame = pd.DataFrame({"KS": [0.042851, np.nan], "meaning": ["x" * 80, "short"]},
                         index=pd.Index([0.500000, 1.0], name="noise"))
    html = styled(frame).to_html()
    assert f'class="{TABLE_CLASS}"' in html
    assert ">0.0429<" in html and ">0.5<" in html and f">{DASH}<" in html and ">1<" in html
    assert "nan" not in html.lower() and "0.500000" not in html
    assert "x" * 80 in html and "white-space: normal" in html  # the whole sentence, wrapping
    assert ">0.04285<" in styled(frame, columns={"KS": 4}).to_html()
    with pytest.raises(KeyError, match="columns: 'ks' is not a column"):
        styled(frame, columns={"ks": 4})
    assert f'class="{TABLE_CLASS}"' in styled(frame["KS"]).to_html()  # a Series becomes a one-column table


def claim(measured, expected, relation="le", tolerance=0.0):
    return Claim("c", "s", "how", measured, expected, tolerance, relation, "nb", "cpu")


def test_the_ledger_prints_measured_and_threshold_apart():
    """0.04285 against 0.04278 once read "0.043 against 0.043": the ledger adds digits until they differ."""
    close = claim(0.04285, 0.04278)
    assert (close.measured_text, close.criterion, close.verdict) == ("0.04285", "≤ 0.04278", "FAIL")
    assert (claim(1.4000850041, 1.25).measured_text, claim(1.4000850041, 1.25).criterion) == ("1.4", "≤ 1.25")
    assert claim(6.2e-14, 0.0, "approx", 1e-6).measured_text == "6.2e-14"
    assert claim(float("nan"), 0.05).measured_text == DASH
    tied = claim(0.05, 0.05)
    assert tied.measured_text == "0.05" and tied.verdict == "pass"


def test_a_statistic_over_seeds_reads_one_way():
    from nine.book.numbers import over_seeds

    assert over_seeds([1.0, 2.0, 3.0]) == "2.0 ± 1.0"
    assert over_seeds([0.5]) == "0.5" and over_seeds([5.5, 5.5]) == "5.5"
    assert over_seeds([float("inf")] * 2) == "∞" and over_seeds([float("inf"), 1.0]) == "∞"
    assert over_seeds([float("-inf"), 1.0]) == "—"


def test_a_table_reads_words_where_the_runs_have_variable_names():
    import pandas as pd

    from nine.book.numbers import label

    assert label("kl_knn") == "kNN KL" and label("kl_knn at 60") == "kNN KL at 60" and label("n_train = 1000") == "train images = 1000"
    assert label("capacity") == "capacity C" and label("capacity C") == "capacity C"  # never labelled twice
    assert label("kl_knnx") == "kl_knnx" and label(3) == 3 and label("adv_head") == "<code>adv_head</code>"
    frame = pd.DataFrame({"kl_knn": [0.1], "seed": [0]}, index=pd.Index(["probe_acc"], name="n_train"))
    html = styled(frame).to_html()
    assert "kNN KL" in html and "linear probe" in html and "train images" in html and "kl_knn" not in html


def test_a_p_value_at_its_test_s_floor_reads_as_a_bound():
    """A permutation p of 1/201 says "no permutation as extreme", not "p = 0.00498": it reads "≤ 0.00498"."""
    import pandas as pd

    from nine.book.numbers import over_seeds, permutation_floor

    floor = permutation_floor()
    assert floor == 1 / 201
    assert over_seeds([floor] * 3, floor=floor) == "≤ 0.00498 on every seed" and over_seeds([floor], floor=floor) == "≤ 0.00498"
    assert over_seeds([floor, 3 * floor], floor=floor) == over_seeds([floor, 3 * floor])  # one seed above: a spread
    frame = pd.DataFrame({"energy_p": [floor, 0.5]}, index=pd.Index(["gaussian", "cgan"], name="prior"))
    html = styled(frame, floors={"energy_p": floor}).to_html()
    assert "≤ 0.00498" in html and ">0.5<" in html and "Gaussian" in html and "cGAN" in html
    with pytest.raises(KeyError, match="floors: 'nope'"):
        styled(frame, floors={"nope": floor})
