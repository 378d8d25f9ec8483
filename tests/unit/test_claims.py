import json

import pytest

from nine.book.claims import Ledger, load_claims, render_rows


def test_relations_and_failures_are_kept(tmp_path):
    ledger = Ledger("nb", "cpu")
    assert ledger.check("a", "s", "c", measured=1.05, expected=1.0, tolerance=0.1).passed
    assert not ledger.check("b", "s", "c", measured=1.2, expected=1.0, tolerance=0.1).passed
    assert ledger.check("c", "s", "c", measured=0.5, expected=1.0, relation="le").passed
    assert not ledger.check("d", "s", "c", measured=0.5, expected=1.0, relation="ge").passed
    assert not ledger.check("e", "s", "c", measured=float("nan"), expected=1.0, tolerance=10).passed
    path = ledger.save(tmp_path)
    record = json.loads(path.read_text())
    assert [row["passed"] for row in record["claims"]] == [True, False, True, False, False]
    loaded = load_claims(tmp_path)
    assert [c.id for c in loaded] == ["a", "b", "c", "d", "e"] and not loaded[1].passed


def test_html_rows_are_anchors_or_links():
    ledger = Ledger("01_theory", "cpu")
    ledger.check("x-1", "<claim>", "how", measured=2.0, expected=1.0, relation="le")
    own = str(ledger.table())
    assert 'id="claim-x-1"' in own and "FAIL" in own and "&lt;claim&gt;" in own
    linked = render_rows(list(ledger.claims.values()), link="../notebooks/")
    assert 'href="../notebooks/01_theory.html#claim-x-1"' in linked and 'id="claim-' not in linked


def test_bad_claim_arguments():
    ledger = Ledger("nb", "cpu")
    with pytest.raises(ValueError, match="relation='lt' is not allowed"):
        ledger.check("a", "s", "c", 1.0, 1.0, relation="lt")
    with pytest.raises(ValueError, match="id='a b' is not allowed"):
        ledger.check("a b", "s", "c", 1.0, 1.0)
    with pytest.raises(ValueError, match="tolerance=-1 is not allowed"):
        ledger.check("a", "s", "c", 1.0, 1.0, tolerance=-1)


def test_an_inconclusive_claim_has_no_verdict_either_way(tmp_path):
    from nine.book.claims import Ledger, load_claims, render_rows

    ledger = Ledger("nb", "cpu")
    row = ledger.check("x", "s", "c", measured=0.9, expected=1.0, relation="ge",
                       inconclusive="the positive control fails: the metric cannot detect a known effect here")
    assert row.verdict == "inconclusive" and not row.passed
    assert ledger.check("y", "s", "c", measured=0.9, expected=1.0, relation="ge").verdict == "FAIL"
    html = render_rows(list(ledger.claims.values()), link=None)
    assert "inconclusive<br><small>the positive control fails" in html and html.count("FAIL") == 1
    loaded = load_claims(ledger.save(tmp_path).parent)
    assert [c.verdict for c in loaded] == ["inconclusive", "FAIL"]


def test_a_table_of_one_page_can_leave_out_the_page_column():
    from nine.book.claims import Ledger, render_rows

    ledger = Ledger("02_page", "cpu")
    ledger.check("a", "s", "c", measured=1.0, expected=1.0)
    rows = list(ledger.claims.values())
    with_page, without = render_rows(rows, link="../notebooks/"), render_rows(rows, link="../notebooks/", page_column=False)
    assert "<th>page</th>" in with_page and "<th>page</th>" not in without
    assert without.count("<td") == with_page.count("<td") - 1 and 'href="../notebooks/02_page.html#claim-a"' in without


def test_every_committed_claim_names_its_rule_and_every_fail_its_reason():
    # the ledger is what a reader cites: how each verdict is reached, and why each FAIL fails
    from nine.store.paths import ROOT

    claims = load_claims(ROOT / "book" / "claims")
    assert len(claims) > 40
    assert [c.id for c in claims if not c.rule.strip()] == []
    assert [c.id for c in claims if c.verdict == "FAIL" and not c.reason.strip()] == []
    assert [c.id for c in claims if c.verdict == "inconclusive" and not c.inconclusive.strip()] == []


def test_a_claim_that_presupposes_another_is_decided_only_where_that_one_passes():
    ledger = Ledger("nb", "cpu")
    ledger.check("match", "s", "c", measured=0.001, expected=0.05, relation="ge")  # FAIL
    price = ledger.check("price", "s", "c", measured=0.99, expected=0.9, relation="ge", premise="match",
                         unmet="at the closest level, 0.99 of plain")
    assert price.verdict == "inconclusive" and "premise match is not a pass (FAIL)" in price.inconclusive
    assert "at the closest level, 0.99 of plain" in price.inconclusive and price.premise == "match"
    ledger.check("match", "s", "c", measured=0.3, expected=0.05, relation="ge")  # now a pass
    assert ledger.check("price", "s", "c", measured=0.99, expected=0.9, relation="ge", premise="match").verdict == "pass"
    with pytest.raises(ValueError, match="premise='nothing' is not allowed"):
        ledger.check("other", "s", "c", measured=1.0, expected=1.0, premise="nothing")


def test_no_committed_claim_passes_where_its_premise_does_not():
    # a price of matching is only stated where matching was found: every trade-off claim names its premise
    from nine.store.paths import ROOT

    claims = {c.id: c for c in load_claims(ROOT / "book" / "claims")}
    tradeoffs = [i for i in claims if "tradeoff" in i]
    assert tradeoffs and all(claims[i].premise for i in tradeoffs)
    for claim in claims.values():
        if claim.premise:
            assert claim.premise in claims, f"{claim.id}: its premise {claim.premise} is not on the ledger"
            if claims[claim.premise].verdict != "pass":
                assert claim.verdict != "pass", f"{claim.id} passes where its premise {claim.premise} does not"
