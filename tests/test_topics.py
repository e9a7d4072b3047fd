"""Topic labeler: seeds, each language's positives, each hard-negative kind, evidence offsets,
taxonomy validation, and the Beam wiring (real TestPipeline)."""

from __future__ import annotations

import copy
import json
import re
import pathlib

import pytest
import yaml
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from conftest import c_or_numpy
from pipeline.config import ConfigError
from transforms.read import file_to_item
from transforms.topics import (CompiledTaxonomy, LabelTopics, label_article, load_taxonomy, term_regex,
                               validate_taxonomy)

PROJECT = pathlib.Path(__file__).resolve().parent.parent
TAXONOMY_FILE = PROJECT / "configs" / "topics.yaml"
SEED_LABELS = {
    "000": ["nato_spending", "sanctions"],
    "001": ["coalition_of_the_willing"],
    "002": ["coalition_of_the_willing"],
    "003": ["nato_spending", "coalition_of_the_willing"],
    "004": ["nato_spending"],
}
NATO, COW, SANCTIONS = "nato_spending", "coalition_of_the_willing", "sanctions"


@pytest.fixture(scope="module")
def taxonomy_data():
    return load_taxonomy(str(TAXONOMY_FILE))


@pytest.fixture(scope="module")
def tax(taxonomy_data):
    return CompiledTaxonomy(taxonomy_data)


@pytest.fixture(params=["c", "python"])
def scan_path(request, monkeypatch):
    """Runs a test on the C core of text analysis and automaton pass (transforms/_topics_scan.c) and on the
    pure-Python path (ahocorasick_rs): tables and texts built inside the test take the chosen path."""
    import transforms.topics as topics

    return c_or_numpy(request, monkeypatch, topics, "_scan_c")


def labels(tax, title, body, lang):
    return tax.label(title, body, lang)[0]


# -- seeds ----------------------------------------------------------------------

@pytest.mark.parametrize("prefix", sorted(SEED_LABELS))
def test_seed_labels_exact(tax, prefix):
    path = next((PROJECT / "data" / "seeds").glob(f"{prefix}_*.txt"))
    item = file_to_item(path.read_bytes(), str(path), "files", 200)
    assert sorted(labels(tax, item["title"], item["body"], "de")) == sorted(SEED_LABELS[prefix])
    # Without a language tag (und) the seeds keep their labels too.
    assert sorted(labels(tax, item["title"], item["body"], None)) == sorted(SEED_LABELS[prefix])


# -- positives per language ------------------------------------------------------

POSITIVES = [
    # nato_spending
    ("de", "Verteidigungsausgaben steigen", "Die Nato-Staaten wollen ihre Verteidigungsausgaben auf 3,5 Prozent des BIP erhöhen.", NATO),
    ("de", "Rüstungsetat auf Rekordniveau", "Der Bundestag stockt den Wehretat auf, um die Nato-Ziele zu erreichen.", NATO),
    ("en", "Allies agree 5% goal", "NATO members pledged to spend 5 percent of GDP on defence by 2035.", NATO),
    ("fr", "L'Otan vise 5 % du PIB", "Les alliés augmenteront leurs dépenses militaires, a annoncé l'Otan.", NATO),
    ("it", "Nato, spese militari in aumento", "L'Italia porterà la spesa per la difesa al 2 per cento del Pil, ha detto il ministro agli alleati della Nato.", NATO),
    ("es", "La OTAN pide más gasto en defensa", "El presupuesto de defensa de España sigue por debajo del objetivo de la Alianza.", NATO),
    ("pl", "Wydatki na obronność rosną", "Polska wyda 4,7 proc. PKB na obronność, najwięcej w NATO.", NATO),
    ("uk", "Витрати на оборону в НАТО", "Союзники по НАТО збільшать витрати на оборону до 5% ВВП.", NATO),
    ("ru", "НАТО увеличит военные расходы", "Страны альянса увеличат расходы на оборону до 5% ВВП.", NATO),
    # coalition_of_the_willing
    ("de", "Koalition der Willigen tagt", "Die Koalition der Willigen berät über Sicherheitsgarantien für die Ukraine.", COW),
    ("en", "Coalition of the willing meets", "Leaders discussed a reassurance force for Ukraine.", COW),
    ("fr", "La coalition des volontaires à Paris", "Les dirigeants ont discuté des garanties de sécurité pour l'Ukraine.", COW),
    ("it", "Vertice dei volenterosi", "La coalizione dei volenterosi discute di garanzie per l'Ucraina.", COW),
    ("es", "Reunión de la coalición de voluntarios", "Los aliados de Ucrania estudian una fuerza multinacional.", COW),
    ("pl", "Koalicja chętnych w Londynie", "Rozmowy o gwarancjach bezpieczeństwa dla Ukrainy.", COW),
    ("uk", "Засідання коаліції охочих", "Лідери обговорили гарантії безпеки для України.", COW),
    ("ru", "Саммит коалиции желающих", "Обсуждались гарантии безопасности для Украины.", COW),
    # coalition described without its name
    ("en", "European force for Ukraine", "The UK- and France-led group is preparing a reassurance force for Ukraine after a ceasefire.", COW),
    ("de", "Wer schützt den Frieden?", "Für die Ukraine sind Sicherheitsgarantien im Gespräch: eine multinationale Truppe unter Führung von Frankreich und Großbritannien.", COW),
    # sanctions
    ("de", "Neues Sanktionspaket gegen Russland", "Die EU hat weitere Banken und Tanker der Schattenflotte gelistet.", SANCTIONS),
    ("en", "US imposes sanctions on Iranian oil network", "The Treasury froze the assets of a dozen firms.", SANCTIONS),
    ("fr", "Nouvelles sanctions contre Moscou", "L'UE adopte un paquet de sanctions visant les banques russes.", SANCTIONS),
    ("it", "Nuove sanzioni Ue contro la Russia", "Il pacchetto di sanzioni colpisce la flotta ombra.", SANCTIONS),
    ("es", "Estados Unidos impone sanciones a Rusia", "El Tesoro congeló los activos de dos petroleras.", SANCTIONS),
    ("pl", "Nowe sankcje UE wobec Rosji", "Pakiet sankcji obejmuje rosyjskie banki.", SANCTIONS),
    ("uk", "Нові санкції ЄС проти Росії", "ЄС ухвалив новий пакет санкцій.", SANCTIONS),
    ("ru", "США ввели санкции против России", "Новые санкции затронули российские банки.", SANCTIONS),
]


@pytest.mark.parametrize("lang,title,body,label", POSITIVES, ids=[f"{p[0]}-{p[3]}-{i}" for i, p in enumerate(POSITIVES)])
def test_positives_per_language(tax, lang, title, body, label):
    assert labels(tax, title, body, lang) == [label]


# -- hard negatives, one test per kind ----------------------------------------------

def test_nato_news_without_money_is_not_spending(tax):
    assert labels(tax, "NATO deploys troops to Lithuania", "The alliance will station a brigade on its eastern flank; "
                  "allied jets patrol the Baltic.", "en") == []
    assert labels(tax, "Nato-Manöver in der Ostsee", "Schiffe aus 20 Bündnisstaaten üben die Abschreckung.", "de") == []


def test_non_nato_military_budgets_are_not_spending(tax):
    assert labels(tax, "China's defence budget rises 7%", "Beijing's military spending worries NATO allies.", "en") == []
    assert labels(tax, "Russland steigert Rüstungsausgaben", "Moskau gibt mehr als sechs Prozent des BIP für das "
                  "Militär aus, warnt die Nato.", "de") == []
    # ... while deterring Russia with NATO money still counts.
    assert labels(tax, "Verteidigungsausgaben steigen – wegen Russland", "Wegen Russland haben die Nato-Staaten "
                  "ihre Verteidigungsausgaben um 18 Prozent erhöht.", "de") == [NATO]


def test_defence_in_sport_is_not_spending(tax):
    assert labels(tax, "Liverpool's defence under scrutiny", "Having spent 100 million on defence in the transfer "
                  "window, the club conceded three goals. Allied fans were unhappy.", "en") == []
    assert labels(tax, "Bundesliga: Abwehr wackelt", "Die Verteidigung des BVB zeigte Schwächen.", "de") == []


def test_iraq_2003_coalition_is_not_cow(tax):
    assert labels(tax, "Blair defends Iraq war", "In 2003 Bush and Blair led a coalition of the willing into Iraq; "
                  "today Ukraine dominates the news.", "en") == []


def test_other_summits_of_the_willing_are_not_cow(tax):
    assert labels(tax, "Summit of the willing on climate", "A coalition of the willing on climate finance met in "
                  "Nairobi; Ukraine was not discussed.", "en") == []
    assert labels(tax, "Koalition der Willigen für Flüchtlinge", "Mehrere EU-Staaten wollen als Koalition der "
                  "Willigen Flüchtlinge aufnehmen.", "de") == []


def test_domestic_coalitions_are_not_cow(tax):
    assert labels(tax, "Große Koalition einigt sich", "Union und SPD sind sich einig; die Koalition ist willig, "
                  "der Ukraine weiter zu helfen.", "de") == []
    assert labels(tax, "Dutch coalition government collapses", "The coalition partners were not willing to "
                  "compromise on asylum.", "en") == []


def test_ordinary_willing_is_not_cow(tax):
    assert labels(tax, "Buyers willing to pay more", "Willing sellers and willing buyers met in Kyiv.", "en") == []
    assert labels(tax, "Willige Helfer", "Viele sind willig, der Ukraine zu helfen.", "de") == []


def test_uk_france_without_ukraine_force_is_not_cow(tax):
    assert labels(tax, "France and Britain deepen missile cooperation", "London and Paris will jointly develop "
                  "cruise missiles and coordinate nuclear deterrence.", "en") == []


def test_sports_penalties_are_not_sanctions(tax):
    assert labels(tax, "Referee sanctions two players", "The league may impose further sanctions on the club.",
                  "en") == []
    assert labels(tax, "Dopingsperre", "Der Weltverband prüft weitere Sanktionen gegen die Athletin.", "de") == []
    assert labels(tax, "L'arbitre sanctionne le capitaine", "La ligue étudie d'autres sanctions.", "fr") == []


def test_regulatory_and_disciplinary_fines_are_not_sanctions(tax):
    assert labels(tax, "SEC sanctions trading firm", "The regulator imposed sanctions and a penalty in the US.",
                  "en") == []
    assert labels(tax, "Bürgergeld: Regierung plant härtere Sanktionen", "Wer Termine im Jobcenter versäumt, "
                  "verliert Leistungen.", "de") == []
    assert labels(tax, "Disziplinarverfahren", "Den Beamten drohen dienstrechtliche Sanktionen, sagte die "
                  "Regierung.", "de") == []


def test_sanction_meaning_approval_is_not_sanctions(tax):
    assert labels(tax, "Board sanctions the plan", "The government sanctioned the merger after the board "
                  "sanctioned talks.", "en") == []


def test_word_boundaries(tax):
    import re
    assert not re.search(term_regex("nato"), "Die Senatoren stimmten zu", re.I)
    assert re.search(term_regex("nato"), "Nato-Gipfel", re.I)
    assert re.search(term_regex("*sanktion*"), "Wirtschaftssanktionen", re.I)
    assert re.search(term_regex("zwei prozent ziel*"), "das Zweiprozentziel", re.I)
    assert re.search(term_regex("außenminister"), "Aussenminister", re.I)
    assert not labels(tax, "Senatoren beraten Haushalt", "Die Senatoren beschließen Verteidigungsausgaben für "
                      "die Feuerwehr.", "de")


# -- evidence --------------------------------------------------------------------

def test_evidence_offsets_point_at_the_matched_text(tax):
    title = "Neues Sanktionspaket gegen Russland"
    body = "Die EU verhängt Wirtschaftssanktionen. Zugleich erhöhen Nato-Staaten ihre Verteidigungsausgaben " \
           "auf fünf Prozent des BIP für Verteidigung."
    article = {"title": title, "body": body, "language": "de"}
    labeled = label_article(article, tax)
    assert labeled["topics"] == [NATO, SANCTIONS]
    assert labeled["taxonomy_version"] == tax.version
    texts = {"title": title, "body": body}
    for ev in labeled["topic_evidence"]:
        assert ev["score"] > 0 and ev["matches"]
        for m in ev["matches"]:
            matched = texts[m["field"]][m["start"]:m["end"]].lower()
            if m["term"].startswith("combo:"):
                continue
            stem = m["term"].strip("*").split("*")[0].split()[0]
            assert stem in matched.replace("ss", "ß") or stem in matched, (m, matched)
    sanctions = next(e for e in labeled["topic_evidence"] if e["label"] == SANCTIONS)
    words = {texts[m["field"]][m["start"]:m["end"]] for m in sanctions["matches"]}
    assert {"Sanktionspaket", "Wirtschaftssanktionen"} <= words


def test_language_tag_picks_lists_with_fallback(tax):
    # Polish terms are not used for a German article, but are for an untagged one.
    title, body = "Nowe sankcje UE wobec Rosji", "Pakiet sankcji obejmuje rosyjskie banki."
    assert labels(tax, title, body, "de") == []
    assert labels(tax, title, body, None) == [SANCTIONS]
    assert labels(tax, title, body, "xx") == [SANCTIONS]


def test_title_weighs_more_than_body(tax):
    filler = "Ein langer Bericht über das Wetter und die Ernte im Herbst. " * 8  # pushes the match past the lead
    body_only = tax.score_label(SANCTIONS, "Bericht", filler + "Zum Schluss: die EU erwägt Sanktionen gegen Russland.",
                                "de")
    in_lead = tax.score_label(SANCTIONS, "Bericht", "Die EU erwägt Sanktionen gegen Russland. " + filler, "de")
    in_title = tax.score_label(SANCTIONS, "EU erwägt Sanktionen gegen Russland", "Zum Schluss.", "de")
    assert in_title["score"] > in_lead["score"] > body_only["score"] > 0
    assert in_title["assigned"] and in_lead["assigned"] and not body_only["assigned"]


# -- taxonomy validation -----------------------------------------------------------

def _raw():
    return yaml.safe_load(TAXONOMY_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.pop("version"), "version"),
    (lambda d: d["labels"].clear(), "at least one label"),
    (lambda d: d["labels"].update({"Bad-Name": d["labels"]["sanctions"]}), "lower_snake_case"),
    (lambda d: d["labels"]["sanctions"].pop("threshold"), "labels.sanctions.threshold"),
    (lambda d: d["labels"]["sanctions"].update(threshold=0), "must be > 0"),
    (lambda d: d["labels"]["sanctions"].update(colour="red"), "unknown key"),
    (lambda d: d["labels"]["sanctions"]["terms"].update(de=[]), "non-empty list"),
    (lambda d: d["labels"]["sanctions"]["terms"].update(german=["x"]), "unknown language code 'german'"),
    (lambda d: d["labels"]["sanctions"]["terms"].update(ua=["x"]), "unknown language code 'ua'"),
    (lambda d: d["labels"]["sanctions"]["terms"].update(cz=["x"]), "ISO 639-1"),
    (lambda d: d.update(language_fallbacks={"uk": ["rus"]}), "unknown language code 'rus'"),
    (lambda d: d.update(max_chars=0), "max_chars"),
    (lambda d: d["labels"]["sanctions"]["terms"]["de"].append({"pattern": "a(b"}), "characters terms cannot use"),
    (lambda d: d["labels"]["sanctions"]["terms"]["de"].append({"pattern": "x", "weight": -1}), "negative"),
    (lambda d: d["labels"]["sanctions"]["terms"]["de"].append({"pattern": "x", "weight": "high"}), "expected a number"),
    (lambda d: d["labels"]["nato_spending"]["veto"][0].update(before=None, after=5, window=None), "both before and after"),
    (lambda d: d["labels"]["nato_spending"]["veto"][0].update(fields=["lead"]), "fields"),
    (lambda d: d["labels"]["nato_spending"]["veto"][0].update(cancel="all"), "cancel"),
    (lambda d: d["labels"]["nato_spending"]["combos"][0].update(groups=[{"any": ["x"]}]), "at least two"),
    (lambda d: d.update(field_weights={"title": 2, "footer": 1}), "unknown key"),
    (lambda d: d["labels"]["nato_spending"]["requires"][0].update(satisfied_by=["no_such_combo"]),
     "'no_such_combo' is not a combo of this label"),
    (lambda d: d["labels"]["nato_spending"]["requires"][0].update(satisfied_by="defence_budget_share_of_gdp"),
     "expected a list of strings"),
])
def test_taxonomy_validation_errors(mutate, message):
    data = _raw()
    mutate(data)
    with pytest.raises(ConfigError) as err:
        validate_taxonomy(data, "topics.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("topics.yaml: ")


def test_adding_a_label_needs_no_code_change(tmp_path):
    data = _raw()
    data["labels"]["tariffs"] = {"description": "Tariffs and trade wars.", "threshold": 2,
                                 "terms": {"en": [{"pattern": "tariff*", "weight": 2}], "de": ["*zölle", "zoll*"]}}
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    tax = CompiledTaxonomy(load_taxonomy(str(path)))
    assert tax.label("Trump announces new tariffs", "Tariffs on steel.", "en")[0] == ["tariffs"]
    assert tax.label("Neue Strafzölle", "Die USA erheben Zölle.", "de")[0] == ["tariffs"]


def test_taxonomy_description_per_label(taxonomy_data):
    for name, spec in taxonomy_data["labels"].items():
        assert len(spec["description"]) > 40, name
        assert {"de", "en", "fr"} <= set(spec["terms"]) | ({"de", "en", "fr"} if "any" in spec["terms"] else set())


# -- Beam wiring ---------------------------------------------------------------------

def test_label_topics_transform_in_a_pipeline(taxonomy_data):
    articles = [
        {"article_id": "a", "title": "EU beschließt Sanktionspaket", "body": "Gegen Russland.", "language": "de"},
        {"article_id": "b", "title": "Bundesliga", "body": "Die Abwehr wackelt.", "language": "de"},
        {"article_id": "c", "title": "Coalition of the willing meets", "body": "Talks on Ukraine.", "language": "und"},
    ]
    version = taxonomy_data["version"]
    with TestPipeline() as p:
        out = (p | __import__("apache_beam").Create(articles)
               | LabelTopics(copy.deepcopy(taxonomy_data))
               | __import__("apache_beam").Map(lambda a: (a["article_id"], tuple(a["topics"]), a["taxonomy_version"],
                                                          len(a["topic_evidence"]))))
        assert_that(out, equal_to([("a", ("sanctions",), version, 1), ("b", (), version, 0),
                                   ("c", ("coalition_of_the_willing",), version, 1)]))


# -- eval module -----------------------------------------------------------------------

def test_evaluate_counts_and_errors(tax, tmp_path):
    from bench.evaluate_topics import evaluate, load_examples

    path = tmp_path / "set.jsonl"
    rows = [
        {"id": "p", "lang": "en", "title": "New sanctions on Russia", "body": "The EU acted.", "labels": ["sanctions"]},
        {"id": "m", "lang": "en", "title": "Nothing here", "body": "Weather.", "labels": ["sanctions"]},
        {"id": "n", "lang": "en", "title": "Referee sanctions player", "body": "League.", "must": [],
         "must_not": ["sanctions"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    result = evaluate(tax, load_examples(str(path)))
    assert result["labels"]["sanctions"]["tp"] == 1
    assert result["labels"]["sanctions"]["fn"] == 1
    assert result["labels"]["sanctions"]["fp"] == 0
    assert [e["id"] for e in result["errors"]] == ["m"]


DEV_SETS = [PROJECT / "tests" / "data" / "topics_dev.jsonl", PROJECT.parent / "shared" / "eval" / "topics_dev.jsonl",
            PROJECT / "tests" / "data" / "realnews_dev.jsonl"]


@pytest.mark.parametrize("path", DEV_SETS, ids=["own-dev", "shared-dev", "realnews-dev"])
def test_dev_sets_meet_targets(tax, path):
    from bench.evaluate_topics import evaluate, load_examples

    if not path.exists():
        pytest.skip(f"{path} not present")
    result = evaluate(tax, load_examples(str(path)))
    for label, c in result["labels"].items():
        if c["precision"] is not None:
            assert c["precision"] >= 0.95, (label, result["errors"])
        if c["recall"] is not None:
            assert c["recall"] >= 0.90, (label, result["errors"])


# -- lookup matcher == one alternation regex per term list ---------------------------

def _reference_find(terms, text):
    """The straightforward matcher: one case-insensitive alternation of the term regexes, longest
    pattern first, anchored terms before leading-* ones; a leading-* match reports its whole word."""
    import re

    ordered = sorted({t["pattern"]: t["weight"] for t in reversed(terms)}.items(), key=lambda kv: (-len(kv[0]), kv[0]))
    ranked = ([kv for kv in ordered if not kv[0].startswith("*")] + [kv for kv in ordered if kv[0].startswith("*")])
    regex = re.compile("|".join(f"(?P<t{i}>{term_regex(p)})" for i, (p, _) in enumerate(ranked)), re.IGNORECASE)
    found = []
    for m in regex.finditer(text):
        pattern, weight = ranked[int(m.lastgroup[1:])]
        start = m.start()
        while pattern.startswith("*") and start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_"):
            start -= 1
        found.append((pattern, weight, start, m.end()))
    return found


TRICKY_TERMS = ["nato", "nato ziel*", "nato staaten", "sanktion*", "*sanktion*", "*ausgaben", "außenminister*",
                "# prozent ziel*", "zwei prozent ziel*", "u.s.", "eu's", "eu", "g 7", "g7", "us sanktion*", "ıraq",
                "straße", "sıla", "ſtaat", "σίγμα", "арм*", "оон", "é*", "prozent", "prozent ziel",
                # session 4: ș/ț keys in both spellings, a number before the key, a key that is the whole term
                "# %", "# procent", "ținta", "țintei", "alianț*", "gel", "zwei prozent", "hrubý domácí produkt"]
TRICKY_WORDS = ["Nato-Staaten", "Senatoren", "NATO", "nato", "Nato-Ziel", "Natoziel", "Nato–Ziel", "Nato--Ziel",
                "Sanktionen", "EU-Sanktionen", "Wirtschaftssanktionen", "SANKTIONSPAKET", "Verteidigungsausgaben",
                "Ausgaben", "Aussenminister", "Außenministerin", "AUSSENMINISTER", "Außen-Minister", "3,5-Prozent-Ziel",
                "2.5 Prozent Ziel", "5Prozentziel", "٣ prozent ziel", "#", "# Prozent", "Zwei-Prozent-Ziel",
                "zwei\u00a0prozent\u202fziel", "U.S.", "u.s.a.", "EU's", "EU’s", "EU", "G7", "G 7", "G-7", "g77",
                "US-Sanktionen", "İstanbul", "Irak", "IRAQ", "ıraq", "Straße", "STRASSE", "Strasse", "Sıla", "ſtaat",
                "Staat", "ΣΊΓΜΑ", "σίγμα", "Σίγμας", "АРМИЯ", "армія", "ООН", "Ünïcødé", "École", "e\u0301cole",
                "ǅ", "x", "_nato", "nato_", "2nato", "Prozent", "prozentual", "Senatoren-Ziel",
                "1.5 Prozent", "1,5%", "3 Prozentprozent", "12 - %", "2.5.3 %", "1.2.3 procent", "٣ %", "x3 %", "3x %",
                "%", "5", ".5 %", "Țintei", "ţinta", "TINTA", "ținte", "alianţei", "ALIANȚA", "Regel", "gelten",
                "Gel", "zweiprozent", "Zwei-Prozent", "hrubý domácí produkt", "HRUBÝ-DOMÁCÍ-PRODUKT", "produkt"]


def _generated_texts(words, count, seed):
    import random

    rng = random.Random(seed)
    separators = [" ", "-", "", ", ", "\n", " (", ") ", ".", "’", "/", "\u00a0"]
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            word = rng.choice(words)
            word = rng.choice([word, word.upper(), word.lower(), word.capitalize()])
            parts += [word, rng.choice(separators)]
        yield "".join(parts[:-1] if rng.random() < 0.5 else parts)


def test_lookup_matcher_equals_alternation_regex_on_tricky_texts(scan_path):
    from transforms.topics import _Matcher, _Text, case_exceptions

    terms = [{"pattern": p, "weight": float(i % 3 + 1)} for i, p in enumerate(TRICKY_TERMS)]
    matcher = _Matcher(terms)
    texts = list(_generated_texts(TRICKY_WORDS, 3000, seed=7)) + TRICKY_WORDS + [""]
    checked = 0
    for text in texts:
        expected = _reference_find(terms, text)
        assert list(matcher.find(_Text(text, case_exceptions(matcher.alphabet)))) == expected, text
        checked += bool(expected)
    assert checked > 1000  # most generated texts do match something


def test_term_by_term_hits_equal_all_hits_on_tricky_texts(scan_path):
    """The context tables' lazy path (one term verified when asked for) finds exactly what the eager path
    finds for every term, and never leaves a matching term out of its candidates."""
    from transforms.topics import _LazyHits, _TermTable, _Text, case_exceptions, _alphabet

    table = _TermTable(TRICKY_TERMS)
    exceptions = case_exceptions(_alphabet(TRICKY_TERMS))
    texts = list(_generated_texts(TRICKY_WORDS, 1500, seed=5)) + TRICKY_WORDS + [""]
    matched = checked_in_c = 0
    for text in texts:
        analysed = _Text(text, exceptions)
        everything = table.find_all(analysed)
        key_hits = table.key_hits(analysed)
        lazy = _LazyHits(table, analysed)  # with the C core: from the C pass's checked hits (c_hits)
        checked_in_c += table.c_hits(analysed) is not None
        for i in range(len(table.patterns)):
            assert table.term_spans(i, analysed, key_hits) == everything.get(i, []), (table.patterns[i], text)
            assert lazy.spans(i) == everything.get(i, []), (table.patterns[i], text)
        if key_hits is not None:
            assert set(everything) <= key_hits[1], text
            assert set(everything) <= lazy.candidates, text
        matched += len(everything)
    assert matched > 1500
    # (Few: "ıraq", "ſtaat" and "σίγμα" make "I", "S" and "Σ" case exceptions, which take the Python analysis.)
    assert (checked_in_c > 100) == (scan_path == "c")


def test_latin1_haystack_is_lower_casing_for_every_code_point():
    """The byte haystack (Latin-1 lower case, "?" for other characters) equals str.lower() encoded the same
    way for every text without a _LOWER_SPECIAL character: derived here from every code point."""
    import sys

    from transforms.topics import _LATIN1_LOWER, _LOWER_SPECIAL

    special = {chr(c) for c in range(sys.maxunicode + 1)
               if len(chr(c).lower()) != 1 or (c > 255 and any(ord(x) < 256 for x in chr(c).lower()))}
    assert special == set(_LOWER_SPECIAL)
    assert all(len(chr(b).lower()) == 1 and ord(chr(b).lower()) < 256 for b in range(256))
    assert _LATIN1_LOWER == bytes(ord(chr(b).lower()) for b in range(256))
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c) not in special and c != 0x3a3)
    assert (everything.encode("latin-1", "replace").translate(_LATIN1_LOWER)
            == everything.lower().encode("latin-1", "replace"))


def test_c_lower_latin1_is_the_python_haystack_for_every_code_point():
    """transforms/_topics_scan.c's lower_latin1 gives the Python haystack (encode, translate) and the count of
    characters outside Latin-1, in strings of each width, and None when a flag character occurs."""
    import sys

    from transforms import topics

    if topics._scan_c is None:
        pytest.skip("transforms._topics_scan is not built (no C compiler at install)")
    lower_latin1 = topics._scan_c.lower_latin1
    flags = topics._flags(topics.case_exceptions("abcdefghijklmnopqrstuvwxyzäöüσ"))
    assert set(topics._LOWER_SPECIAL) <= set(flags) and "ı" in flags and "Σ" in flags
    everything = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c) not in flags)
    for text in (everything, everything[:200], everything[:2000], "".join(chr(c) for c in range(256)
                                                                          if chr(c) not in flags), ""):
        expected = text.encode("latin-1", "replace").translate(topics._LATIN1_LOWER)
        assert lower_latin1(text, flags) == (expected, sum(ord(ch) > 255 for ch in text))
        assert lower_latin1(text, "") == (expected, sum(ord(ch) > 255 for ch in text))
    for ch in flags:
        for text in (ch, "Straße " + ch, "NATO – " + ch + " x", "x" * 50 + ch + "\U0001f600"):
            assert lower_latin1(text, flags) is None, (ch, text)
            assert lower_latin1(text, "") is not None


def test_c_latin1_is_the_encoding_with_question_marks():
    from transforms import topics

    if topics._scan_c is None:
        pytest.skip("transforms._topics_scan is not built (no C compiler at install)")
    for text in ["", "Straße", "NATO – „Ziel“", "\U0001f600 x ı", "".join(map(chr, range(300)))]:
        assert topics._scan_c.latin1(text) == text.encode("latin-1", "replace")


def test_texts_with_case_exceptions_find_the_same_hits_on_both_paths(taxonomy_data, monkeypatch):
    """With the C core, a text holding a case exception that matches one letter ("ı" matches "i") is looked at
    through the haystack of the text with it mapped to that letter; the Python path looks at its str.lower()
    (a "wide" text). Both find the same hits in every table and give the same labels."""
    import random

    from transforms import topics

    if topics._scan_c is None:
        pytest.skip("transforms._topics_scan is not built (no C compiler at install)")
    fast = CompiledTaxonomy(taxonomy_data)
    assert fast._exceptions.get("ı") == "i"
    rng = random.Random(21)
    patterns = sorted({t["pattern"] for t in _all_terms(taxonomy_data)})
    words = [w.replace("i", "ı") if rng.random() < 0.5 else w for w in _words_from_terms(patterns, rng)]
    texts = list(_generated_texts(words + ["Kılıçdaroğlu", "und", "die", "NATO"] * 3, 300, seed=4))
    with_haystack = 0
    for text in texts:
        title, _, body = text.partition("\n")
        for language in ("de", None):
            table, context = fast._primary_for(language)[0], fast._context_for(language)
            c_text = fast.text(body)
            c_hits = (table.find_all(c_text), [context.c_term_spans(i, c_text, context.c_hits(c_text))
                                               for i in range(len(context.patterns))]
                      if context.c_hits(c_text) is not None else None)
            c_labels = fast.label(title, body, language)
            with monkeypatch.context() as patched:
                patched.setattr(topics, "_scan_c", None)
                py_text = fast.text(body)
                assert py_text.haystack is None or "ı" not in body
                assert table.find_all(py_text) == c_hits[0], body
                if c_hits[1] is not None:
                    assert [context.find_all(py_text).get(i, []) for i in range(len(context.patterns))] == c_hits[1]
                assert fast.label(title, body, language) == c_labels, body
            with_haystack += "ı" in body and c_text.haystack is not None
    assert with_haystack > 100


def test_c_automaton_reports_what_ahocorasick_rs_reports():
    """The C automaton's overlapping pass finds every key at every position, as ahocorasick_rs does, for random
    keys (prefixes and suffixes of each other, "?", bytes above 127, up to 40 bytes long) and haystacks, and
    for str keys in a str (code points of several Unicode blocks)."""
    import random

    import ahocorasick_rs

    from transforms import topics

    if topics._scan_c is None:
        pytest.skip("transforms._topics_scan is not built (no C compiler at install)")
    rng = random.Random(17)
    alphabet = b"abe?\xe4\xdf. "
    checked = 0
    for _ in range(300):
        keys = list(dict.fromkeys(bytes(rng.choice(alphabet) for _ in range(rng.choice([rng.randint(1, 5),
                                                                                         rng.randint(1, 40)])))
                                  for _ in range(rng.randint(1, 30))))
        automaton = topics._scan_c.Automaton(tuple(keys), bytes(len(keys)), *[((),) * len(keys)] * 5,
                                             topics._SPACE_BYTES, topics._NEAR)
        reference = ahocorasick_rs.BytesAhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard)
        for _ in range(5):
            # up to 1,500 bytes: the pass walks a haystack of 256 bytes or more in four segments side by side
            haystack = bytes(rng.choice(alphabet + b"xyz") for _ in range(rng.choice([rng.randint(0, 300),
                                                                                       rng.randint(250, 1500)])))
            expected = sorted((k, at) for k, at, _end in reference.find_matches_as_indexes(haystack, overlapping=True))
            got = sorted((k, at) for k, starts in automaton.starts(haystack).items() for at in starts)
            assert got == expected, (keys, haystack)
            checked += len(expected)
    assert checked > 50000
    # str keys (the str.lower() of a "wide" text): code points in several blocks, one walk
    letters = "aä?натоșțăσ€"
    checked = 0
    for _ in range(200):
        keys = list(dict.fromkeys("".join(rng.choice(letters) for _ in range(rng.randint(1, 6)))
                                  for _ in range(rng.randint(1, 30))))
        automaton = topics._scan_c.Automaton(tuple(keys), bytes(len(keys)), *[((),) * len(keys)] * 5,
                                             topics._SPACE_BYTES, topics._NEAR)
        reference = ahocorasick_rs.AhoCorasick(keys, matchkind=ahocorasick_rs.MatchKind.Standard)
        for _ in range(5):
            haystack = "".join(rng.choice(letters + "xyzй\U0001f600") for _ in range(rng.randint(0, 400)))
            expected = sorted((k, at) for k, at, _end in reference.find_matches_as_indexes(haystack, overlapping=True))
            got = sorted((k, at) for k, starts in automaton.starts(haystack).items() for at in starts)
            assert got == expected, (keys, haystack)
            checked += len(expected)
    assert checked > 10000
    with pytest.raises(ValueError):
        topics._scan_c.Automaton(("\U0001f600",), b"\0", *[((),)] * 5, topics._SPACE_BYTES, topics._NEAR)


NON_LATIN1_WORDS = ["Ținta", "ALIANȚA", "alianţa", "Północnoatlantycki", "zł", "ZŁOTYCH", "ČR", "česká",
                    "„Rusko“", "НАТО", "армія", "Армия", "ООН", "ввп", "σίγμα", "ΣΊΓΜΑ", "–", "„", "“", "?", "z?",
                    "??", "?r", "Kelvin\u212a", "İstanbul", "ẞ", "Ÿ", "SAN\u212aTIONEN", "STRA\u1e9eE",
                    "\u212bRSBUDGETEN"]


def test_latin1_haystack_and_wide_texts_find_the_same_hits(scan_path):
    """A term's hits are the same whether a text is looked at through its Latin-1 haystack (keys with other
    characters as "?", each hit checked) or as str.lower() (a "wide" text), eagerly or term by term."""
    from transforms.topics import _LOWER_SPECIAL, _LazyHits, _TermTable, _Text, case_exceptions, _alphabet

    # Without "ıraq", "ſtaat" and "σίγμα", whose exceptions ("I", "S", "Σ") would send most texts the
    # str.lower() way.
    terms = [t for t in TRICKY_TERMS if not set(t) & set("ıſσ")] + [
        "alianț*", "północnoatlantyck*", "zł", "złotych", "čr", "česk*", "нато", "ввп", "армі*", "# zł", "z r",
        "årsbudget*"]
    table = _TermTable(terms)
    exceptions = case_exceptions(_alphabet(terms))
    words = TRICKY_WORDS + NON_LATIN1_WORDS
    plain = [w for w in words if not any(ch in exceptions or ch in _LOWER_SPECIAL for ch in w)]
    texts = (list(_generated_texts(words, 500, seed=9)) + list(_generated_texts(plain, 1500, seed=10))
             + NON_LATIN1_WORDS + ["НАТО и ООН — армія " * 20, "Zł, ČR „Rusko“ – ?r z? " * 10])
    narrow = outside_latin1 = 0
    for text in texts:
        analysed = _Text(text, exceptions)
        wide = _Text(text, exceptions)
        if wide.haystack is not None:
            narrow += 1
            wide.haystack, wide.wide = None, text.lower()
        expected = wide.exact_only or table.find_all(wide)
        if analysed.exact_only:
            continue
        assert table.find_all(analysed) == expected, text
        key_hits = table.key_hits(analysed)
        lazy = _LazyHits(table, analysed)
        for i in range(len(table.patterns)):
            assert table.term_spans(i, analysed, key_hits) == expected.get(i, []), (table.patterns[i], text)
            assert lazy.spans(i) == expected.get(i, []), (table.patterns[i], text)
        if analysed.haystack is not None:
            outside_latin1 += sum(1 for i in expected if max(map(ord, table.patterns[i])) > 255)
    assert narrow > 500 and outside_latin1 > 200  # the "?" keys were found (and checked) on the byte path


def test_whole_word_terms_skip_the_regex_soundly(scan_path):
    """A term that is its automaton key alone ("gel", "nato", "u.s.") is reported without its regex when the
    hit starts and ends a word. Sound because lower-case equality implies a case-insensitive regex match for
    every character whose lower case is one character (the only other one, "Σ", lowers by context and is a
    case exception): checked over every code point."""
    import sys

    for code in range(sys.maxunicode + 1):
        ch = chr(code)
        lower = ch.lower()
        if lower != ch and len(lower) == 1 and ch != "\u03a3":
            assert re.fullmatch(re.escape(lower), ch, re.IGNORECASE), hex(code)
    from transforms.topics import _Matcher, _Text

    matcher = _Matcher([{"pattern": p, "weight": 1.0} for p in ("gel", "nato", "u.s.", "eu", "=UN")])
    for text in ["Gel", "Regel", "gelten", "NATO-Gel", "Gel2", "_gel", "U.S.-Truppen", "u.s.a.", "EU’s", "Eu",
                 "UN", "Un", "UNO", "nato", "NaTo."]:
        assert list(matcher.find(_Text(text, {}))) == _reference_find(
            [{"pattern": p, "weight": 1.0} for p in ("gel", "nato", "u.s.", "eu", "=UN")], text), text


def test_label_gate_equals_a_check_per_label(scan_path, taxonomy_data):
    """_LabelGate (bits per label and combo group) gives exactly the labels, and per label the combos, that
    a plain check of every term and group finds, for random sets of present term ids."""
    import random

    tax = CompiledTaxonomy(taxonomy_data)
    rng = random.Random(13)
    for language in ("de", "en", "pl", None):
        table, gate = tax._primary_for(language)
        plans = {name: (tax._chosen_patterns(spec["terms"], language),
                        [[tax._chosen_patterns(g, language) for g in combo["groups"]] for combo in spec["combos"]])
                 for name, spec in tax.labels.items()}
        for _ in range(3000):
            present = {table.ids[p] for p in rng.sample(table.patterns, rng.randint(0, 6))}
            names = {table.patterns[i] for i in present}
            expected_combos = {name: [n for n, groups in enumerate(combos) if all(names & g for g in groups)]
                               for name, (terms, combos) in plans.items()}
            expected = [name for name, (terms, _combos) in plans.items() if names & terms or expected_combos[name]]
            found = gate.bits(present)
            assert gate.possible(found) == expected
            for name in expected:
                assert gate.combos(name, found) == expected_combos[name]


def _words_from_terms(patterns, rng):
    """Text renderings of term patterns: inflections, compounds, hyphens, ß/ss, numbers."""
    out = []
    for p in patterns:
        word = p.replace("#", rng.choice(["3,5", "2.5", "5", "٣", "12"]))
        word = word.replace("*", rng.choice(["", "en", "spaket", "s"]))
        word = word.replace(" ", rng.choice([" ", "-", "", "\u00a0", " - "]))
        word = word.replace("ß", rng.choice(["ß", "ss", "SS"]))
        word = word.replace("ț", rng.choice(["ț", "ţ", "Ț", "Ţ"])).replace("ș", rng.choice(["ș", "ş", "Ș", "Ş"]))
        out.append(rng.choice(["", "Wirtschafts", "EU-", "(", "Nicht"]) + word if p.startswith("*") else word)
    return out


def test_label_lookup_path_equals_regex_path_on_generated_articles(scan_path, taxonomy_data):
    import random

    from transforms.topics import _Text

    class RegexOnly(CompiledTaxonomy):
        def text(self, text):
            analysed = _Text(text or "", {})
            analysed.exact_only = True  # every matcher takes its single alternation regex
            return analysed

    fast, reference = CompiledTaxonomy(taxonomy_data), RegexOnly(taxonomy_data)
    rng = random.Random(11)
    patterns = sorted({t["pattern"] for t in _all_terms(taxonomy_data)})
    words = _words_from_terms(patterns, rng) + TRICKY_WORDS + ["und", "the", "die", "Regierung", "government"] * 20
    assigned = 0
    for n, text in enumerate(_generated_texts(words, 700, seed=3)):  # 700: round 7 added veto words
        title, _, body = text.partition("\n")
        for language in ("de", "en", "fr", "uk", None):
            got = fast.label(title, body, language)
            assert got == reference.label(title, body, language), (language, title, body)
            assigned += bool(got[0])
    assert assigned > 200


def test_score_bound_is_never_below_a_labels_score(taxonomy_data):
    """CompiledTaxonomy.label skips a label whose _score_bound is below its threshold: the bound is at least the
    score of every positive match before vetoes (terms and every combo), on real and generated articles, and
    the labels it skips are never assigned."""
    import random

    from transforms.topics import _matches

    tax = CompiledTaxonomy(taxonomy_data)
    rng = random.Random(5)
    patterns = sorted({t["pattern"] for t in _all_terms(taxonomy_data)})
    words = _words_from_terms(patterns, rng) + ["und", "the", "die", "Regierung", "government"] * 20
    articles = [(ex.get("title") or "", ex.get("body") or "", ex.get("lang"))
                for ex in map(json.loads, (PROJECT / "tests" / "data" / "realnews_dev.jsonl").read_text().splitlines())]
    articles += [(*text.partition("\n")[::2], "de") for text in _generated_texts(words, 300, seed=8)]
    scored = skipped = 0
    for title, body, language in articles:
        for lang in (language, None):
            texts = {"title": tax.text(title), "body": tax.text(body)}
            table, gate = tax._primary_for(lang)
            hits = [texts[f].hits(table) for f in ("title", "body")]
            found = gate.bits(hits[0]) | gate.bits(hits[1])
            for name in gate.possible(found):
                spec = tax.labels[name]
                positive = _matches(tax._matcher((name, "terms"), spec["terms"], lang), texts)
                for combo in spec["combos"]:
                    positive += tax._combo_matches(name, combo, lang, texts)
                bound = tax._score_bound(name, lang, table, hits[0], hits[1], gate.combos(name, found))
                assert tax._score(positive) <= bound + 1e-9, (name, lang, title, body)
                if bound < spec["threshold"] - 1e-9:
                    skipped += 1
                    assert not tax._score_label(name, texts, lang)["assigned"]
                scored += 1
    assert scored > 500 and skipped > 20


def _all_terms(value):
    if isinstance(value, dict):
        if "pattern" in value:
            yield value
        else:
            for item in value.values():
                yield from _all_terms(item)
    elif isinstance(value, list):
        for item in value:
            yield from _all_terms(item)


def test_case_exceptions_come_from_the_regex_engine():
    from transforms.topics import case_exceptions

    exceptions = case_exceptions("iks")
    assert exceptions["ı"] == "i" and exceptions["İ"] == "i" and exceptions["ſ"] == "s"
    assert "I" not in exceptions and "K" not in exceptions and "\u212a" not in exceptions  # Kelvin sign lowers to k
    assert case_exceptions("σ")["\u03a3"] is None  # final sigma lowers by context: plain regex path


# -- issue 14: the error classes on real news, one test per rule ------------------------

LANGUAGES_14 = ["cs", "de", "en", "es", "fr", "it", "nl", "pl", "pt", "ro", "ru", "sk", "sv", "uk"]


def test_every_label_has_terms_in_the_14_languages(taxonomy_data):
    for name, spec in taxonomy_data["labels"].items():
        covered = set(spec["terms"])
        missing = [lang for lang in LANGUAGES_14 if lang not in covered and "any" not in covered]
        # "any" holds only the English name of the coalition; every language still needs its own list.
        missing += [lang for lang in LANGUAGES_14 if "any" in covered and lang not in covered]
        assert not missing, (name, missing)


def _example(pattern):
    """A text rendering of a term: '*' -> an inflection, '#' -> a number, '=' dropped."""
    word = pattern.lstrip("=")
    word = word.replace("#", "3,5").replace("*", "en" if not word.startswith("*") else "")
    return ("Wirtschafts" if pattern.startswith("*") else "") + word.lstrip("*")


def test_every_term_matches_an_example_of_itself(tax, taxonomy_data):
    """Each term of every label's term lists finds a rendering of itself inside a sentence."""
    checked = 0
    for name, spec in taxonomy_data["labels"].items():
        for lang, terms in spec["terms"].items():
            matcher = tax._matcher((name, "terms"), spec["terms"], None if lang == "any" else lang)
            for term in terms:
                text = f"Heute: {_example(term['pattern'])} (Bericht)."
                found = [p for p, _w, _s, _e in matcher.find(tax.text(text))]
                assert found, (name, lang, term["pattern"], text)
                checked += 1
    assert checked > 300


def test_state_actor_abbreviations_are_case_sensitive_whole_words(tax):
    # "un"/"us" as article or pronoun never satisfy the state-actor requirement ...
    assert SANCTIONS not in labels(tax, "Un embargo", "Un artiste a été sanctionné par un jury; pour nous, un embargo "
                                   "sur ses chansons serait absurde.", "fr")
    assert SANCTIONS not in labels(tax, "They sanctioned us", "The club handed us sanctions and a fine for the "
                                   "late kick-off, they told us.", "en")
    # ... the organisation and the country written as such do.
    assert labels(tax, "UN embargo extended", "The UN extended its arms embargo for a year.", "en") == [SANCTIONS]
    assert labels(tax, "US sanctions", "The US imposed sanctions on two banks.", "en") == [SANCTIONS]


def test_however_idiom_is_no_embargo(tax):
    for text in ["Sin embargo, miles de sevillanos nos quedaremos sin ver al cantante.",
                 "La inflación baja; sin embargo, los precios de la vivienda suben y el Gobierno de España actúa."]:
        assert labels(tax, None, text, "es") == []
    assert labels(tax, None, "La UE impone un embargo de petróleo a Rusia; sin embargo, Hungría tiene una excepción.",
                  "es") == [SANCTIONS]


@pytest.mark.parametrize("lang,text", [
    ("fr", "L'Autorité de la concurrence sanctionne douze entreprises : le gendarme de la concurrence inflige 611 "
           "millions d'euros d'amende pour une entente sur les prix."),
    ("it", "L'AGCM sanziona la società: l'Autorità garante della concorrenza ha inflitto sanzioni per pratica "
           "commerciale scorretta."),
    ("de", "Das Bundeskartellamt verhängt Sanktionen gegen ein Kartell: Bußgelder von 100 Millionen Euro."),
    ("sv", "Integritetsskyddsmyndigheten beslutar om sanktioner: en sanktionsavgift enligt GDPR för företaget."),
    ("ro", "ANPC a aplicat sancțiuni contravenționale: amenzi pentru protecția consumatorilor."),
    ("ru", "ФАС наложила санкции на компанию: штраф за нарушение антимонопольного законодательства."),
])
def test_competition_and_market_regulators_are_not_sanctions(tax, lang, text):
    assert SANCTIONS not in labels(tax, None, text, lang)


@pytest.mark.parametrize("lang,text", [
    ("de", "EU friert weitere russische Vermögen ein. Betroffen sind Oligarchen und Banken."),
    ("en", "The EU froze the assets of three Russian banks and imposed an export ban on drone engines."),
    ("nl", "Brussel: vermogen van Russische oligarchen wordt bevroren; er komt een prijsplafond voor olie uit Rusland."),
    ("cs", "EU zmrazila majetek ruských oligarchů a zavedla cenový strop na ruskou ropu."),
    ("fr", "L'UE adopte des mesures restrictives contre la Russie et un plafond de prix du pétrole."),
    ("sv", "EU inför exportförbud och frysta tillgångar för ryska banker."),
])
def test_paraphrases_without_the_word_sanction(tax, lang, text):
    assert SANCTIONS in labels(tax, None, text, lang)


def test_defence_target_as_share_of_gdp_without_the_word_nato(tax):
    text = ("Les alliés se sont engagés à consacrer 5 % du PIB aux dépenses de défense et de sécurité d'ici 2035, "
            "sous la pression de l'Alliance atlantique.")
    assert labels(tax, None, text, "fr") == [NATO]
    assert labels(tax, None, "L'Espagne consacre 2 % du PIB à l'éducation et à la sécurité sociale.", "fr") == []


def test_inflected_ukrainian_and_romanian_spellings(tax):
    assert COW in labels(tax, None, "Не всі учасники \"Коаліції рішучих\" направлять в Україну контингент.", "uk")
    for spelling in ["Coaliției de voință", "Coaliţiei de voinţă"]:  # comma-below and cedilla
        assert COW in labels(tax, None, f"Macron şi Starmer vor co-prezida o reuniune a \"{spelling}\" pentru Ucraina.",
                             "ro")


def test_bill_signing_is_not_sanctions(tax):
    assert labels(tax, None, "O presidente Lula sancionou a lei que regulamenta o mercado de carbono, publicada no "
                  "Diário Oficial da União sem vetos.", "pt") == []


def test_topics_read_a_bounded_prefix(taxonomy_data):
    data = dict(taxonomy_data, max_chars=1000)
    tax = CompiledTaxonomy(data)
    body = "x " * 5000 + "Die EU beschließt ein neues Sanktionspaket gegen Russland."
    assert tax.label("Wetter", body, "de")[0] == []
    assert CompiledTaxonomy(taxonomy_data).label("Wetter", body, "de")[0] == [SANCTIONS]


def test_eval_exits_2_without_its_corpora(tmp_path, capsys):
    import argparse

    from pipeline.commands.eval import handle

    args = argparse.Namespace(topics=str(TAXONOMY_FILE), sets=[str(tmp_path / "missing.jsonl")], gnad="",
                              sample=0, json=False, write=False)
    assert handle(args, []) == 2
    assert "missing corpus" in capsys.readouterr().err
    args = argparse.Namespace(topics=str(TAXONOMY_FILE), sets=None, gnad=str(tmp_path / "no-gnad.csv"),
                              sample=0, json=False, write=False)
    assert handle(args, []) == 2


def test_eval_reports_per_language(tax, tmp_path):
    from bench.evaluate_topics import evaluate, load_examples, markdown_scores, targets_met

    path = tmp_path / "set.jsonl"
    rows = [{"id": str(i), "lang": lang, "title": None, "body": body, "labels": labels} for i, (lang, body, labels) in
            enumerate([("nl", "De Europese Unie heeft een nieuw sanctiepakket tegen Rusland aangenomen.", ["sanctions"]),
                       ("cs", "EU schválila nový balík sankcí proti Rusku.", ["sanctions"]),
                       ("cs", "Koalice protlačila státní rozpočet ve sněmovně.", [])])]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    result = evaluate(tax, load_examples(str(path)))
    assert result["languages"]["nl"]["sanctions"]["tp"] == 1 and result["languages"]["cs"]["sanctions"]["tp"] == 1
    assert result["languages"]["cs"]["coalition_of_the_willing"]["fp"] == 0
    assert targets_met(result) == []  # fewer than 5 positives per cell: nothing to fail
    assert "| cs |" in markdown_scores("set", result)


def test_coalition_named_with_its_size_but_not_iraq_2003(tax):
    assert labels(tax, None, "Het Verenigd Koninkrijk en Canada behoren tot de 35 landen die deel uitmaken van de "
                  "Coalitie van Bereidwilligen.", "nl") == [COW]
    # Counter-examples: the 2003 Iraq coalition had its size too; a size alone names no coalition.
    assert labels(tax, None, "The coalition of the willing of 49 countries invaded Iraq in 2003 under Bush.", "en") == []
    assert labels(tax, None, "Een coalitie van 35 landen wil de klimaatdoelen halen.", "nl") == []


# -- the alliance's target as a share of GDP (gdp_share_target) and GDP figures of public finances ------------

# (language, positive: the spending target without a defence word, hard negative: a GDP figure of public
# finances with the same percentage, target word and alliance member).
GDP_TARGET_PAIRS = [
    ("de", "Die Nato-Staaten einigten sich auf das Ziel, fünf Prozent des BIP auszugeben.",
     "Nato-Mitglied Italien verfehlt erneut das Ziel: das Haushaltsdefizit liegt bei 3,4 Prozent des BIP."),
    ("en", "NATO allies agreed on a new benchmark of 3.5 percent of GDP by 2035.",
     "Italy, a NATO member, missed its target again: the budget deficit reached 3.4 percent of GDP."),
    ("fr", "Les membres de l'OTAN visent un objectif de 3,5 % du PIB d'ici 2035.",
     "La France, membre de l'OTAN, manque son objectif : le déficit public atteint 5,8 % du PIB."),
    ("it", "L'obiettivo della Nato del 2 per cento del Pil è stato raggiunto dall'Italia.",
     "L'Italia, membro della Nato, rispetta l'obiettivo: il deficit pubblico scende al 3 per cento del Pil."),
    ("es", "España alcanzará el objetivo de la OTAN del 2 % del PIB este año.",
     "España, socio de la OTAN, cumple el objetivo de déficit público del 3 % del PIB."),
    ("pt", "Portugal compromete-se com a meta da NATO de 2 % do PIB até 2029.",
     "Portugal, membro da NATO, cumpre a meta: o défice fica em 0,4 % do PIB."),
    ("nl", "Nederland haalde de NAVO-norm van twee procent van het bbp.",
     "Nederland, NAVO-lid, blijft onder de Europese norm: het begrotingstekort is 2 procent van het bbp."),
    ("pl", "Polska przeznaczy 4,7 proc. PKB, więcej niż wynosi cel NATO.",
     "Polska, członek NATO, przekroczyła cel: deficyt budżetowy wyniósł 5,7 proc. PKB."),
    ("cs", "Česko letos splní závazek vůči NATO: dvě procenta HDP.",
     "Česko, člen NATO, plní cíl: schodek rozpočtu klesne na 2 procenta HDP."),
    ("sk", "Slovensko splní cieľ NATO dve percentá HDP.",
     "Slovensko, člen NATO, nesplnilo cieľ: schodok rozpočtu dosiahol 5 percent HDP."),
    ("ro", "România va atinge ținta NATO de 2,5 la sută din PIB.",
     "România, membră NATO, ratează ținta: deficitul bugetar a ajuns la 8,6 la sută din PIB."),
    ("sv", "Sverige når Natos mål om två procent av BNP.",
     "Sverige, medlem i Nato, klarar målet: budgetunderskottet blir 1 procent av BNP."),
    ("uk", "Україна закликає союзників НАТО досягти цілі 5 відсотків ВВП.",
     "Польща, член НАТО, виконала ціль: дефіцит бюджету становить 6 відсотків ВВП."),
    ("ru", "Страны НАТО договорились о цели в пять процентов ВВП.",
     "Франция, член НАТО, не достигла цели: дефицит бюджета составил 5 процентов ВВП."),
]
GDP_WORD = {"de": "BIP", "en": "GDP", "fr": "PIB", "it": "Pil", "es": "PIB", "pt": "PIB", "nl": "bbp", "pl": "PKB",
            "cs": "HDP", "sk": "HDP", "ro": "PIB", "sv": "BNP", "uk": "ВВП", "ru": "ВВП"}
ALLY_WORD = {"de": "Nato", "en": "NATO", "fr": "OTAN", "it": "Nato", "es": "OTAN", "pt": "NATO", "nl": "NAVO",
             "pl": "NATO", "cs": "NATO", "sk": "NATO", "ro": "NATO", "sv": "Nato", "uk": "НАТО", "ru": "НАТО"}
DEFICIT_WORD = {"de": "Haushaltsdefizit", "en": "budget deficit", "fr": "déficit public", "it": "deficit pubblico",
                "es": "déficit público", "pt": "dívida pública", "nl": "begrotingstekort", "pl": "deficyt budżetowy",
                "cs": "schodek rozpočtu", "sk": "schodok rozpočtu", "ro": "deficitul bugetar",
                "sv": "budgetunderskottet", "uk": "дефіцит бюджету", "ru": "дефицит бюджета"}
PERCENT_WORD = {"de": "2 Prozent", "en": "2 percent", "fr": "2 %", "it": "2 per cento", "es": "2 %", "pt": "2 %",
                "nl": "2 procent", "pl": "2 proc.", "cs": "2 procenta", "sk": "2 percentá", "ro": "2 la sută",
                "sv": "2 procent", "uk": "2 відсотки", "ru": "2 процента"}
TARGET_WORD = {"de": "Ziel", "en": "target", "fr": "objectif", "it": "obiettivo", "es": "objetivo", "pt": "meta",
               "nl": "norm", "pl": "cel", "cs": "cíl", "sk": "cieľ", "ro": "ținta", "sv": "målet", "uk": "ціль",
               "ru": "цель"}
FILLER = " Dazu mehr im Bericht unserer Redaktion von heute Abend, mit allen Zahlen und Stimmen. "


def _combo(taxonomy_data, name):
    return next(c for c in taxonomy_data["labels"][NATO]["combos"] if c["name"] == name)


@pytest.mark.parametrize("lang,positive,negative", GDP_TARGET_PAIRS, ids=[p[0] for p in GDP_TARGET_PAIRS])
def test_spending_target_as_share_of_gdp_in_14_languages(tax, lang, positive, negative):
    topics, evidence = tax.label(None, positive, lang)
    assert topics == [NATO], (lang, positive)
    assert "combo:gdp_share_target" in evidence[0]["terms"]
    assert labels(tax, None, negative, lang) == [], (lang, negative)


def test_every_gdp_target_term_has_a_positive_and_a_hard_negative(tax, taxonomy_data):
    """Each percentage and each name of the alliance in gdp_share_target makes the label next to GDP, and not
    when a public-finance word (deficit, debt) stands next to the same figure."""
    combo = _combo(taxonomy_data, "gdp_share_target")
    checked = 0
    for group in combo["groups"][1:]:
        for key, terms in group.items():
            for term in terms:
                lang = "en" if key == "any" else key
                word = _example(term["pattern"])
                if term in combo["groups"][1].get(key, []):  # a percentage
                    core = f"{TARGET_WORD[lang]} {word} {GDP_WORD[lang]}"
                else:  # a name of the alliance
                    core = f"{word} {PERCENT_WORD[lang]} {GDP_WORD[lang]}"
                positive = f"{ALLY_WORD[lang]}: {core}."
                negative = f"{ALLY_WORD[lang]}: {DEFICIT_WORD[lang]} {core}."
                assert NATO in labels(tax, None, positive, lang), (key, term["pattern"], positive)
                assert labels(tax, None, negative, lang) == [], (key, term["pattern"], negative)
                checked += 1
    assert checked > 90


def test_every_public_finance_veto_term_cancels_only_the_match_next_to_it(tax, taxonomy_data):
    veto = next(r for r in taxonomy_data["labels"][NATO]["veto"] if r["name"] == "public_finances")
    checked = 0
    for lang, terms in veto["terms"].items():
        core = f"{ALLY_WORD[lang]}: {TARGET_WORD[lang]} {PERCENT_WORD[lang]} {GDP_WORD[lang]}."
        for term in terms:
            word = _example(term["pattern"])
            assert labels(tax, None, f"{word} {core}", lang) == [], (lang, term["pattern"])
            assert labels(tax, None, f"{core}{FILLER}{word}.", lang) == [NATO], (lang, term["pattern"])
            checked += 1
    assert checked > 80


def test_gdp_figures_without_target_or_alliance_are_not_spending(tax):
    # GDP growth, debt and research targets: a percentage of GDP is not the alliance's target, also not
    # when a party or coalition named "Bündnis", "Sojusz" or "Aliança" sets it.
    assert labels(tax, None, "De economie groeide vorig jaar met 2 procent van het bbp.", "nl") == []
    assert labels(tax, None, "Polska chce wydawać na badania 3 proc. PKB; to cel strategii lizbońskiej.", "pl") == []
    assert labels(tax, None, "Vláda má cíl: tři procenta HDP na vědu a výzkum.", "cs") == []
    assert labels(tax, None, "Regeringen har som mål att satsa 1 procent av BNP på bistånd.", "sv") == []
    assert labels(tax, None, "Guvernul are ca obiectiv investiții de 5 la sută din PIB în infrastructură.", "ro") == []
    assert labels(tax, None, "Bündnis 90/Die Grünen fordern das Ziel von 3 Prozent des BIP für Forschung.", "de") == []
    assert labels(tax, None, "Sojusz Lewicy chce wydawać na naukę 3 proc. PKB; to cel na 2030 rok.", "pl") == []
    assert labels(tax, None, "A Aliança Democrática fixa a meta de 3 % do PIB para a investigação.", "pt") == []


@pytest.mark.parametrize("lang,positive,negative", [
    # Dutch compounds of the alliance target; the ECB's inflation norm is no defence target.
    ("nl", "Achttien NAVO-landen voldoen dit jaar aan de tweeprocentsnorm.",
     "De ECB houdt vast aan de tweeprocentsnorm voor de inflatie."),
    ("nl", "De NAVO-landen moeten het twee-procentsdoel halen.", "Het kabinet wil het twee-procentsdoel voor de groei halen."),
    ("nl", "Op de top in Den Haag spreken de NAVO-landen een vijfprocentsnorm af.",
     "De bank hanteert een vijfprocentsnorm voor de rente."),
    ("nl", "Het NAVO-vijfprocentsdoel ligt ver buiten bereik.", "Het vijfprocentsdoel voor de export ligt ver buiten bereik."),
    # The Dutch word for the alliance and its target word, Romanian alliance words without diacritics.
    ("nl", "De militaire alliantie heeft een doelstelling van 2 procent van het bbp.",
     "De alliantie van luchtvaartmaatschappijen heeft een doelstelling: 2 procent meer passagiers."),
    # (session 4: Romania's own 2 % of GDP for military spending is a member's budget and now counts without
    # the alliance word; the hard negative is a non-member's budget)
    ("ro", "Romania a alocat 2% din PIB pentru cheltuieli militare, ca restul aliantei.",
     "Rusia a alocat 6% din PIB pentru cheltuieli militare, dupa ce a atacat Ucraina."),
    ("ro", "Aliatii vor aloca 2% din PIB pentru cheltuieli de aparare.",
     "Aliatii vor aloca 2% din PIB pentru educatie."),
])
def test_dutch_target_compounds_and_alliance_words(tax, lang, positive, negative):
    assert NATO in labels(tax, None, positive, lang), positive
    assert NATO not in labels(tax, None, negative, lang), negative


# -- session 4: a member's budget as a share of GDP, the target as a percentage (held-out 2/3 misses) ---------

# (language, positive: a member's defence budget as a share of GDP without the alliance's name,
#  hard negatives: the same share of GDP for debt/deficit, for health or education, and a non-member's budget)
BUDGET_SHARE_CASES = [
    ("cs", "Česká republika do roku 2024 zvýší výdaje na obranu na 2 procenta HDP, řekl premiér.",
     ["Veřejný dluh by měl stoupnout na 43 procent HDP, schodek rozpočtu na 5 procent HDP.",
      "Česko dává na vzdělávání asi 4 % HDP, méně než průměr OECD.",
      "Rusko letos vydá na obranu 6 procent HDP, uvedl Kreml."]),
    ("sk", "Výdavky na obranu by tak mohli dosiahnuť dve percentá HDP, povedal minister.",
     ["Schodok rozpočtu dosiahne 5 percent HDP a verejný dlh 58 percent HDP.",
      "Na zdravotníctvo pôjde 6 percent HDP.",
      "Ukrajina vydáva na obranu viac ako 30 percent HDP."]),
    ("pl", "Tegoroczny budżet MON zakłada, że na cele obronne zostanie przeznaczonych 2,1 proc. PKB.",
     ["Deficyt budżetowy wyniesie 5,7 proc. PKB, a dług publiczny 55 proc. PKB.",
      "Rada Ministrów przyjęła projekt ustawy podnoszący nakłady na ochronę zdrowia do 7 proc. PKB.",
      "Rosja przeznaczy na wojsko 6 proc. PKB, podał Kreml."]),
    ("nl", "Nederland geeft volgend jaar 2 procent van het bruto binnenlands product (bbp) uit aan Defensie.",
     ["Het begrotingstekort komt uit op 3 procent van het bbp.",
      "Nederland besteedt 10 procent van het bbp aan zorg.",
      "Israël besteedt 8 procent van het bbp aan defensie."]),
    ("sv", "Försvarsanslaget ska öka till 2 procent av BNP, vill regeringen.",
     ["Statsskulden ligger på 33 procent av BNP.", "Sjukvården kostar 11 procent av BNP.",
      "Ryssland lägger 6 procent av BNP på försvaret."]),
    ("ro", "Ministrul a afirmat că România alocă minimum 2% din PIB pentru apărare.",
     ["Deficitul bugetar a ajuns la 8,6% din PIB.", "Guvernul alocă 6% din PIB pentru educație.",
      "Rusia alocă peste 6% din PIB pentru armată."]),
    ("pt", "Portugal investe 1,6% do PIB em Defesa, abaixo do que fazem os vizinhos.",
     ["O défice orçamental foi de 2,1% do PIB.", "Portugal gasta 10% do PIB em saúde.",
      "Israel gasta 8,8% do seu PIB em defesa."]),
    ("it", "L'Italia deve arrivare a spendere il 2% del Pil per la difesa.",
     ["Il deficit pubblico scende al 3% del Pil.", "La spesa sanitaria vale il 6,3% del Pil.",
      "La Russia spende il 6% del Pil per la difesa."]),
    ("es", "El Gobierno destinará el 2,1 % del PIB a defensa, ni más ni menos.",
     ["La deuda pública, en el 99,4% del PIB, supera su objetivo.", "El gasto en educación es el 4,6 % del PIB.",
      "Rusia dedica el 6 % del PIB a defensa, según el Kremlin."]),
    ("fr", "Le gouvernement veut porter les dépenses militaires à 3,5 % du produit intérieur brut.",
     ["Le déficit public atteint 5,8 % du PIB.", "Les dépenses de santé représentent 11 % du PIB.",
      "La Russie consacre 6 % de son PIB à la défense."]),
    ("de", "Der Wehretat soll künftig 1,5 Prozent des Bruttoinlandsprodukts betragen.",
     ["Die Schuldenquote sank auf 62,5 Prozent des BIP.", "Für Bildung werden 4,5 Prozent des BIP ausgegeben.",
      "Russland gibt sechs Prozent des BIP für das Militär aus."]),
    ("en", "The prime minister will increase defence spending to 2.5 per cent of GDP by 2027.",
     ["The UK spends around 10% of its gross domestic product (GDP) on health.",
      "The budget deficit reached 4.4 percent of GDP.", "Israel spends 8.8% of its GDP on defence."]),
    ("uk", "Уряд планує збільшити витрати на оборону до 3% ВВП.",
     ["Дефіцит бюджету становитиме 18% ВВП.", "На освіту спрямують 5% ВВП.",
      "Україна витрачає 31% свого ВВП на оборону."]),
    ("ru", "Правительство увеличит расходы на оборону до 3% ВВП.",
     ["Дефицит бюджета составит 2% ВВП.", "На здравоохранение направят 4% ВВП.",
      "Россия тратит на оборону более 6% ВВП."]),
]


@pytest.mark.parametrize("lang,positive,negatives", BUDGET_SHARE_CASES, ids=[c[0] for c in BUDGET_SHARE_CASES])
def test_member_budget_as_share_of_gdp_without_the_alliance_name(tax, lang, positive, negatives):
    topics, evidence = tax.label(None, positive, lang)
    assert topics == [NATO], (lang, positive)
    assert "combo:defence_budget_share_of_gdp" in evidence[0]["terms"]
    for negative in negatives:
        assert labels(tax, None, negative, lang) == [], (lang, negative)


def test_every_defence_word_of_the_budget_share_combo_has_a_positive_and_a_hard_negative(tax, taxonomy_data):
    """Each defence word makes the label next to "N % of GDP" without the alliance's name, and not when a
    public-finance word stands next to it or a non-member's budget is meant."""
    combo = _combo(taxonomy_data, "defence_budget_share_of_gdp")
    non_member = {"en": "Israel", "de": "Russland", "fr": "Israël", "it": "Israele", "es": "Israel", "pt": "Israel",
                  "nl": "Israël", "pl": "Rosja", "cs": "Rusko", "sk": "Rusko", "ro": "Rusia", "sv": "Ryssland",
                  "uk": "Україна", "ru": "Украина"}
    checked = 0
    for lang, terms in combo["groups"][2].items():
        for term in terms:
            core = f"{_example(term['pattern'])} {PERCENT_WORD[lang]} {GDP_WORD[lang]}"
            assert labels(tax, None, f"{core}.", lang) == [NATO], (lang, term["pattern"], core)
            assert labels(tax, None, f"{DEFICIT_WORD[lang]} {core}.", lang) == [], (lang, term["pattern"])
            assert labels(tax, None, f"{non_member[lang]}: {core}.", lang) == [], (lang, term["pattern"])
            assert labels(tax, None, f"{core} ({non_member[lang]}).", lang) == [], (lang, term["pattern"])
            # ... and the alliance named anywhere lifts the non_member_budget veto (the budget is then a
            # member's next to a non-member named in passing)
            assert labels(tax, None, f"{core} ({non_member[lang]}). {ALLY_WORD[lang]}.", lang) == [NATO], lang
            checked += 1
    assert checked > 50


@pytest.mark.parametrize("lang,positive,negative", [
    # the target as a percentage with a target word but no GDP word (held-out 2 nl-08bd9872 class)
    ("nl", "De 29 NAVO-landen hebben een doelstelling van 2 procent in 2024.",
     "De centrale bank wil dat de inflatie terugkeert naar ons doel van twee procent."),
    ("nl", "De twee procent is een norm die binnen het militaire bondgenootschap is afgesproken.",
     "De twee procent is een norm die de ECB voor de inflatie hanteert."),
    ("pt", "O Governo quer atingir a meta dos 2% na Defesa já este ano.",
     "O Banco Central Europeu mantém a meta dos 2% para a inflação."),
    ("de", "Die Bundeswehr soll die Zielmarke von 2 Prozent dauerhaft erreichen.",
     "Die EZB hält an ihrer Zielmarke von 2 Prozent Inflation fest."),
    ("en", "Defence will reach the target of 2.5 percent next year, the minister said.",
     "The central bank kept its target of 2 percent inflation."),
    ("cs", "Armáda konečně dosáhne hranice dvou procent, řekla ministryně.",
     "Inflace se vrátí pod hranici dvou procent, uvedla ČNB."),
])
def test_defence_target_as_percentage_without_gdp(tax, lang, positive, negative):
    assert NATO in labels(tax, None, positive, lang), positive
    assert labels(tax, None, negative, lang) == [], negative


@pytest.mark.parametrize("lang,positive,negative", [
    ("pt", "As sanções contra a Rússia aumentaram o défice orçamental russo, diz Bruxelas.",
     "Portugal escapa a sanções de Bruxelas, com défice a recuar para 2%."),
    ("es", "Las sanciones de la UE disparan el déficit de Rusia.",
     "España evita las sanciones de Bruselas por el déficit excesivo."),
    ("en", "EU sanctions have widened Russia's budget deficit.",
     "The EU could impose sanctions on Italy over its budget deficit."),
    ("ro", "Sancțiunile UE au adâncit deficitul bugetar al Rusiei.",
     "Comisia Europeană poate aplica sancțiuni României pentru deficitul excesiv."),
])
def test_eu_fiscal_penalties_are_not_sanctions(tax, lang, positive, negative):
    assert SANCTIONS in labels(tax, None, positive, lang), positive
    assert SANCTIONS not in labels(tax, None, negative, lang), negative


@pytest.mark.parametrize("lang,positive,negative", [
    # held-out 4 lexical gaps: the ministry's / the army's budget in each language's own phrasing ...
    ("pt", "O Governo reforça o orçamento da Defesa em 772 milhões, como pede a NATO.",
     "A Rússia reforça o orçamento da Defesa em 20 %."),
    ("pt", "O aumento da despesa em Defesa advém dos compromissos com a NATO.",
     "O aumento da despesa em Defesa da Rússia preocupa a NATO."),
    ("ro", "Bugetul Ministerului Apărării pentru 2026 respectă angajamentele față de NATO.",
     "Bugetul Ministerului Apărării al Rusiei crește din nou."),
    ("ro", "Bugetul de înzestrare a armatei este agreat cu aliații NATO.",
     "Bugetul de înzestrare a armatei ruse crește, avertizează Kremlinul."),
    ("sv", "Försvarets budget går från 148 till 175 miljarder, i linje med Natos mål.",
     "Rysslands försvarets budget växer."),
    ("sv", "Anslaget för det militära försvaret ökar, enligt Natos mål.",
     "Anslaget för det militära försvaret i Ryssland ökar."),
    ("sk", "Rozpočet pre obranu je nižší, hoci NATO žiada viac.", "Rusko zvyšuje rozpočet pre obranu."),
    ("cs", "Rozpočet na obranu ve výši dvou procent nestačí, řekla ministryně; NATO chce víc.",
     "Rusko zvyšuje rozpočet na obranu."),
    ("fr", "Le budget 2026 des Armées sera en hausse, conformément aux engagements pris à l'OTAN.",
     "La Russie augmente le budget 2026 des armées russes."),
    ("ru", "Бюджет бундесвера доведут до уровня 1,5% ВВП.", "Россия выделит на оборону 13 триллионов рублей."),
    # ... and world totals are no member's budget
    ("es", "España alcanza el 2 % del PIB en gasto militar.",
     "El gasto militar aumenta en 2016 hasta situarse en el 2,2% del PIB mundial."),
    ("en", "The UK will raise defence spending to 2.5% of GDP.",
     "World military spending reached 2.5% of global GDP last year."),
])
def test_budget_phrases_of_held_out_4_and_world_totals(tax, lang, positive, negative):
    assert NATO in labels(tax, None, positive, lang), positive
    assert NATO not in labels(tax, None, negative, lang), negative


# -- a member's own defence institution next to a budget word (session 4, round 2, held-out 5) -------------

INSTITUTION_BUDGET = {"de": "Der Haushalt der", "en": "The budget of the", "fr": "Le budget du", "it": "Il bilancio del",
                      "es": "El presupuesto del", "pt": "O orçamento do", "nl": "De begroting van", "pl": "Budżet",
                      "cs": "Rozpočet", "sk": "Rozpočet", "ro": "Bugetul", "sv": "Budgeten för", "uk": "Бюджет",
                      "ru": "Бюджет"}
INSTITUTION_MONEY = {"de": "steigt um 3 Milliarden Euro", "en": "grows by 3 billion", "fr": "augmente de 3 milliards",
                     "it": "cresce di 3 miliardi", "es": "sube 3.000 millones", "pt": "sobe 300 milhões",
                     "nl": "stijgt met 3 miljard", "pl": "wzrośnie o 3 mld", "cs": "vzroste o 3 miliardy",
                     "sk": "vzrastie o 3 miliardy", "ro": "crește cu 3 miliarde", "sv": "ökar med 3 miljarder",
                     "uk": "зросте на 3 мільярди", "ru": "вырастет на 3 миллиарда"}
INSTITUTION_NEWS = {"de": "hält im Herbst eine große Übung ab", "en": "holds a large exercise in autumn",
                    "fr": "organise un grand exercice cet automne", "it": "organizza una grande esercitazione",
                    "es": "organiza unas grandes maniobras", "pt": "organiza um grande exercício",
                    "nl": "houdt dit najaar een grote oefening", "pl": "organizuje duże ćwiczenia",
                    "cs": "pořádá velké cvičení", "sk": "organizuje veľké cvičenie", "ro": "organizează un exercițiu amplu",
                    "sv": "håller en stor övning i höst", "uk": "проводить великі навчання",
                    "ru": "проводит большие учения"}
NON_MEMBER = {"en": "Israel", "de": "Russland", "fr": "Israël", "it": "Israele", "es": "Israel", "pt": "Israel",
              "nl": "Israël", "pl": "Rosja", "cs": "Rusko", "sk": "Rusko", "ro": "Rusia", "sv": "Ryssland",
              "uk": "Україна", "ru": "Украина"}


NAMES_A_MEMBER = re.compile(r"fran|ital|españ|portug|nederl|belg|polsk|rp$|česk|čr|slovensk|sr$|român|roman")
NON_MEMBER_ARMY = {"fr": "armées russes", "it": "forze armate russe", "es": "Fuerzas Armadas rusas",
                   "pt": "Forças Armadas russas", "nl": "Russische krijgsmacht", "pl": "wojsk rosyjskich",
                   "cs": "ruské armády", "sk": "ruskej armády", "ro": "armatei ruse"}


def test_every_member_institution_term_has_a_positive_and_hard_negatives(tax, taxonomy_data):
    """Each member institution next to a budget word stands for the alliance ("Budżet MON wzrośnie o 3 mld");
    the same institution without a budget word is defence news without money, and a non-member named next
    to the budget keeps the non_member_budget veto."""
    combo = _combo(taxonomy_data, "member_institution_budget")
    checked = 0
    for lang, terms in combo["groups"][1].items():
        for term in terms:
            inst = _example(term["pattern"])
            core = f"{INSTITUTION_BUDGET[lang]} {inst} {INSTITUTION_MONEY[lang]}"
            topics, evidence = tax.label(None, f"{core}.", lang)
            assert topics == [NATO], (lang, term["pattern"], core)
            assert "combo:member_institution_budget" in evidence[0]["terms"], (lang, term["pattern"])
            if not term["pattern"].startswith(("budżet", "wydatk")):  # "budżet MON" holds its budget word
                assert labels(tax, None, f"{inst} {INSTITUTION_NEWS[lang]}.", lang) == [], (lang, term["pattern"])
            if NAMES_A_MEMBER.search(term["pattern"]):
                # "armées françaises" names its member, which lifts non_member_budget by design; the hard
                # negative is the non-member's own armed forces with money
                other = f"{INSTITUTION_BUDGET[lang]} {NON_MEMBER_ARMY[lang]} {INSTITUTION_MONEY[lang]}."
                assert labels(tax, None, other, lang) == [], (lang, other)
            else:
                assert labels(tax, None, f"{NON_MEMBER[lang]}: {core}.", lang) == [], (lang, term["pattern"])
            checked += 1
    assert checked > 60


# A generic defence-ministry name, the language's own member state (or its currency), and a non-member's
# adjective next to the same ministry name.
MINISTRY = {"en": "Ministry of Defence", "fr": "ministère de la Défense", "it": "ministero della Difesa",
            "es": "Ministerio de Defensa", "pt": "Ministério da Defesa", "nl": "ministerie van Defensie",
            "pl": "Ministerstwa Obrony", "cs": "ministerstva obrany", "sk": "ministerstva obrany",
            "ro": "Ministerului Apărării", "sv": "Försvarsdepartementet"}
OTHER_MINISTRY = {"en": "Ministry of Health", "fr": "ministère de la Santé", "it": "ministero della Salute",
                  "es": "Ministerio de Sanidad", "pt": "Ministério da Saúde", "nl": "ministerie van Financiën",
                  "pl": "Ministerstwa Zdrowia", "cs": "ministerstva zdravotnictví", "sk": "ministerstva zdravotníctva",
                  "ro": "Ministerului Sănătății", "sv": "Socialdepartementet"}
MEMBER_CONTEXT = {"en": "British", "fr": "français", "it": "italiano", "es": "español", "pt": "português",
                  "nl": "Nederland", "pl": "polskiego", "cs": "České", "sk": "slovenského", "ro": "României",
                  "sv": "svenska"}
NON_MEMBER_OWNER = {"en": "Russian", "fr": "russe", "it": "russo", "es": "ruso", "pt": "russo", "nl": "Russische",
                    "pl": "rosyjskiego", "cs": "ruského", "sk": "ruského", "ro": "rus", "sv": "ryska"}


def _assert_no_owner(tax, text, lang, combo):
    """``combo`` does not match ``text``; the label, if assigned, comes from the article as a whole: its
    language (a member's own) or a member named elsewhere in it with no other state (``satisfied_in``)."""
    result = tax.score_label(NATO, None, text, lang)
    assert f"combo:{combo}" not in [m["term"] for m in result["positive"]], (lang, text)
    allowed = [{"alliance": "owner"}] + ([{"alliance": lang}] if lang in HOME_LANGUAGES else [])
    assert not result["assigned"] or result.get("satisfied_in") in allowed, (lang, text)


def _ministry_sentence(lang, ministry, context):
    return f"{INSTITUTION_BUDGET[lang]} {ministry} {context} {INSTITUTION_MONEY[lang]}."


def test_every_generic_ministry_name_needs_its_own_member_state_next_to_it(tax, taxonomy_data):
    """ "Ministry of Defence", "ministerio de Defensa", "ministerstvo obrany" belong to members and non-members
    alike: with the language's own member state (or currency) next to it the budget is a member's; without
    it, or with a non-member's adjective, it is not."""
    combo = _combo(taxonomy_data, "member_ministry_budget")
    checked = 0
    for lang, terms in combo["groups"][1].items():
        for term in terms:
            ministry = _example(term["pattern"])
            positive = _ministry_sentence(lang, ministry, MEMBER_CONTEXT[lang])
            topics, evidence = tax.label(None, positive, lang)
            assert topics == [NATO], (lang, term["pattern"], positive)
            assert "combo:member_ministry_budget" in evidence[0]["terms"], (lang, term["pattern"])
            # Without an owner the combo does not match; in a member's own language the language may still
            # be the owner of another defence-budget term (satisfied_in), never in other languages.
            _assert_no_owner(tax, _ministry_sentence(lang, ministry, ""), lang, "member_ministry_budget")
            assert labels(tax, None, _ministry_sentence(lang, ministry, NON_MEMBER_OWNER[lang]), lang) == [], \
                (lang, term["pattern"])
            checked += 1
    for lang, terms in combo["groups"][2].items():
        for term in terms:
            context = _example(term["pattern"])
            assert labels(tax, None, _ministry_sentence(lang, MINISTRY[lang], context), lang) == [NATO], \
                (lang, term["pattern"])
            # the same member context next to another ministry's budget is no defence budget
            assert labels(tax, None, _ministry_sentence(lang, OTHER_MINISTRY[lang], context), lang) == [], \
                (lang, term["pattern"])
            checked += 1
    assert checked > 40


@pytest.mark.parametrize("lang,positive,negative", [
    # held-out 5 class: members' budgets in money only; counter-examples: non-members' institutions with money
    ("pl", "Projekt ustawy budżetowej przewiduje dla Ministerstwa Obrony Narodowej (MON) kwotę 124,8 miliarda złotych.",
     "Projekt budżetu przewiduje dla Ministerstwa Obrony Ukrainy kwotę 50 miliardów hrywien."),
    ("de", "Der Haushaltsentwurf für das Bundesministerium der Verteidigung sieht 62 Milliarden Euro vor.",
     "Der Haushaltsentwurf für das Verteidigungsministerium sieht 3,3 Milliarden Euro für das Bundesheer vor."),
    ("en", "The Pentagon unveiled its budget proposal of $585 billion on Monday.",
     "India's defence ministry budget grew to 5.94 lakh crore rupees, the Pentagon noted."),
    ("en", "The British Ministry of Defence will get an extra £800 million in its budget.",
     "The Ministry of Defence budget was raised to 5.94 lakh crore rupees."),
    ("pt", "O orçamento do Ministério da Defesa de Portugal sobe 300 milhões de euros.",
     "O Ministério da Defesa brasileiro tem orçamento previsto de 114,62 bilhões de reais."),
    ("sv", "Försvarsmakten får en budget på 175 miljarder kronor nästa år.",
     "Schweiz armé får en budget på 5 miljarder franc nästa år."),
    ("fr", "Le budget du ministère des Armées atteindra 57,2 milliards d'euros.",
     "Le budget du ministère de la Défense algérien atteindra 20 milliards de dollars."),
    ("ro", "Guvernul a suplimentat bugetul MApN cu 1,3 miliarde de lei.",
     "Guvernul de la Chișinău a suplimentat bugetul Ministerului Apărării cu 300 milioane de lei."),
])
def test_member_budget_in_money_through_its_own_institution(tax, lang, positive, negative):
    assert NATO in labels(tax, None, positive, lang), positive
    assert labels(tax, None, negative, lang) == [], negative


# -- a member state named as the OWNER of a defence budget (session 4, round 3, held-out 6) ------------------
# "<member> raises <defence budget word> by 3 billion": the member's name or adjective within 60 characters of
# the defence-budget word, in the same sentence, and no non-member (or comparison) within the window.
STATE_RAISES = {"de": "erhöht den", "en": "raises its", "fr": "augmente le", "it": "aumenta il", "es": "aumenta el",
                "pt": "aumenta o", "nl": "verhoogt het", "pl": "zwiększa", "cs": "zvyšuje", "sk": "zvyšuje",
                "ro": "majorează", "sv": "höjer", "uk": "збільшує", "ru": "увеличивает"}
STATE_DEFENCE = {"de": "Verteidigungshaushalt", "en": "defence budget", "fr": "budget de la défense",
                 "it": "bilancio della difesa", "es": "presupuesto de defensa", "pt": "orçamento da defesa",
                 "nl": "defensiebudget", "pl": "budżet obronny", "cs": "rozpočet na obranu", "sk": "rozpočet na obranu",
                 "ro": "bugetul militar", "sv": "försvarsbudgeten", "uk": "оборонний бюджет", "ru": "оборонный бюджет"}
STATE_OTHER = {"de": "Bildungshaushalt", "en": "health budget", "fr": "budget de la santé", "it": "bilancio della sanità",
               "es": "presupuesto de sanidad", "pt": "orçamento da saúde", "nl": "zorgbudget", "pl": "budżet zdrowia",
               "cs": "rozpočet na zdravotnictví", "sk": "rozpočet na zdravotníctvo", "ro": "bugetul sănătății",
               "sv": "vårdbudgeten", "uk": "бюджет охорони здоров'я", "ru": "бюджет здравоохранения"}
STATE_COMMENT = {"de": "protestiert", "en": "protests", "fr": "proteste", "it": "protesta", "es": "protesta",
                 "pt": "protesta", "nl": "protesteert", "pl": "protestuje", "cs": "protestuje", "sk": "protestuje",
                 "ro": "protestează", "sv": "protesterar", "uk": "протестує", "ru": "протестует"}
STATE_NON_MEMBER = {"de": "China", "en": "China", "fr": "La Chine", "it": "La Cina", "es": "China", "pt": "A China",
                    "nl": "China", "pl": "Chiny", "cs": "Rusko", "sk": "Rusko", "ro": "China", "sv": "Kina",
                    "uk": "Україна", "ru": "Китай"}
STATE_MEMBER = {"de": "Frankreich", "en": "France", "fr": "La France", "it": "L'Italia", "es": "España",
                "pt": "Portugal", "nl": "Nederland", "pl": "Polska", "cs": "Česká vláda", "sk": "Slovenská vláda",
                "ro": "România", "sv": "Sverige", "uk": "Франція", "ru": "Франция"}


def _state_terms(combo, group):
    return [(lang, term["pattern"]) for lang, terms in combo["groups"][group].items() for term in terms]


def _state_positive(tax, text, lang):
    return [m["term"] for m in tax.score_label(NATO, None, text, lang)["positive"]]


def test_every_member_state_owner_term_has_a_positive_and_hard_negatives(tax, taxonomy_data):
    """Each member's name or adjective right before a defence-budget word makes the budget a member's ("Frankreich
    erhöht den Verteidigungshaushalt um 3 Milliarden Euro"); the same name next to a health or education budget,
    in the previous sentence, or with a non-member named within the window does not."""
    combo = _combo(taxonomy_data, "member_state_budget")
    checked = 0
    for lang, pattern in _state_terms(combo, 1):
        owner = _example(pattern) if pattern.startswith("=") else _example(pattern).capitalize()
        positive = f"{owner} {STATE_RAISES[lang]} {STATE_DEFENCE[lang]} {INSTITUTION_MONEY[lang]}."
        topics, evidence = tax.label(None, positive, lang)
        assert topics == [NATO], (lang, pattern, positive)
        assert "combo:member_state_budget" in evidence[0]["terms"], (lang, pattern)
        other = f"{owner} {STATE_RAISES[lang]} {STATE_OTHER[lang]} {INSTITUTION_MONEY[lang]}."
        assert labels(tax, None, other, lang) == [], (lang, other)
        elsewhere = f"{owner} {STATE_COMMENT[lang]}. {STATE_DEFENCE[lang].capitalize()} {INSTITUTION_MONEY[lang]}."
        # The owner in another sentence is no owner (a member's own language may be: satisfied_in).
        _assert_no_owner(tax, elsewhere, lang, "member_state_budget")
        non_member = (f"{STATE_NON_MEMBER[lang]} {STATE_RAISES[lang]} {STATE_DEFENCE[lang]} {INSTITUTION_MONEY[lang]}, "
                      f"{owner} {STATE_COMMENT[lang]}.")
        assert labels(tax, None, non_member, lang) == [], (lang, non_member)
        checked += 1
    assert checked > 250


def test_every_member_state_defence_budget_word_has_a_positive_and_hard_negative(tax, taxonomy_data):
    """Each defence-budget word of member_state_budget forms the combo with the language's member state next to
    it, and not with a non-member next to it (whose budget it is)."""
    combo = _combo(taxonomy_data, "member_state_budget")
    checked = 0
    for lang, pattern in _state_terms(combo, 0):
        word = _example(pattern)
        positive = f"{STATE_MEMBER[lang]} {STATE_RAISES[lang]} {word} {INSTITUTION_MONEY[lang]}."
        assert "combo:member_state_budget" in _state_positive(tax, positive, lang), (lang, pattern, positive)
        negative = f"{STATE_NON_MEMBER[lang]} {STATE_RAISES[lang]} {word} {INSTITUTION_MONEY[lang]}."
        assert "combo:member_state_budget" not in _state_positive(tax, negative, lang), (lang, pattern, negative)
        checked += 1
    assert checked > 80


# Held-out 6 phrasings: a member as yardstick or currency is no owner.
MEMBER_NOT_OWNER = [
    ("de", "Nur die USA haben einen höheren Verteidigungshaushalt."),
    ("en", "Last year the defense budget rose by 7.6 percent to 954 billion yuan (about 138 billion USA dollars)."),
    ("en", "The increase still gives Beijing the world's second biggest defense budget after the U.S."),
    ("fr", "Son budget militaire, le deuxième du monde, reste très loin derrière celui des États-Unis."),
    ("fr", "C'est davantage que le montant des dépenses militaires de la France ou du Royaume-Uni."),
    ("sv", "Det är fortfarande fem gånger mindre än USA:s försvarsbudget."),
    ("ru", "Военный бюджет этой страны занимает второе место в мире после США."),
]


@pytest.mark.parametrize("lang,text", MEMBER_NOT_OWNER, ids=[f"{l}-{i}" for i, (l, _) in enumerate(MEMBER_NOT_OWNER)])
def test_a_member_as_yardstick_or_currency_is_no_owner(tax, lang, text):
    assert "combo:member_state_budget" not in _state_positive(tax, text, lang), (lang, text)
    assert labels(tax, None, text, lang) == [], (lang, text)


def test_same_sentence_combo_needs_no_sentence_end_between_its_parts(tax):
    """'U.S.' ends no sentence; '. ' does."""
    assert "combo:member_state_budget" in _state_positive(tax, "The U.S. defense budget grows by 3 billion.", "en")
    assert "combo:member_state_budget" not in _state_positive(
        tax, "France protests. The defence budget grows by 3 billion.", "en")


# The article's language as the owner of a defence budget (requires.alliance.satisfied_in, session 5).
HOME_LANGUAGES = ("cs", "sk", "pl", "nl", "it", "ro")
# A defence-budget term of the label per language (Romanian "bugetul militar" is a combo word only).
HOME_DEFENCE = {**STATE_DEFENCE, "ro": "bugetul apărării"}


def _alliance_group(taxonomy_data):
    return next(g for g in taxonomy_data["labels"][NATO]["requires"] if g["name"] == "alliance")


def test_a_defence_budget_in_a_members_own_language_is_a_members_budget(tax, taxonomy_data):
    """"Rozpočet na obranu vzroste o 3 miliardy." names no owner: in Czech, Slovak, Polish, Dutch, Italian and
    Romanian the language is the owner (written only in member states); in languages that non-members write too
    (German: Austria, Switzerland; Spanish: Latin America; Swedish before 2024; ...) it is not."""
    assert tuple(_alliance_group(taxonomy_data)["satisfied_in"]["languages"]) == HOME_LANGUAGES
    for lang in STATE_DEFENCE:
        text = f"{HOME_DEFENCE[lang].capitalize()} {INSTITUTION_MONEY[lang]}."
        result = tax.score_label(NATO, None, text, lang)
        if lang in HOME_LANGUAGES:
            assert result["assigned"], (lang, text, result["reason"])
            assert result["satisfied_in"] == {"alliance": lang}
        else:
            assert not result["assigned"] and result["reason"] == "requires alliance: no match", (lang, text, result)
    # The tagged language decides: the same Czech sentence tagged 'und' (all lists) has no owner.
    assert labels(tax, None, f"{STATE_DEFENCE['cs'].capitalize()} {INSTITUTION_MONEY['cs']}.", None) == []


def test_every_other_owner_named_anywhere_cancels_the_language_as_owner(tax, taxonomy_data):
    """Each `unless` term (a non-member, Ukraine, Moldova, Switzerland, ...) named anywhere in the article, even in
    the title or a later sentence, leaves the budget without an owner: "Rozpočet na obranu vzroste o 3 miliardy.
    Rusko ..." is not labeled."""
    unless = _alliance_group(taxonomy_data)["satisfied_in"]["unless"]
    assert set(HOME_LANGUAGES) <= set(unless)
    checked = 0
    for lang, terms in unless.items():
        if lang not in HOME_LANGUAGES:
            continue  # the other languages' lists: test_a_member_named_anywhere_owns_the_budget...
        base = f"{HOME_DEFENCE[lang].capitalize()} {INSTITUTION_MONEY[lang]}."
        assert labels(tax, None, base, lang) == [NATO], (lang, base)
        for term in terms:
            name = _example(term["pattern"]).capitalize()
            assert labels(tax, None, f"{base} {name} 2025.", lang) == [], (lang, term)
            assert labels(tax, name, base, lang) == [], (lang, term)
            checked += 1
    assert checked > 150


def test_satisfied_in_is_validated():
    data = load_taxonomy(str(TAXONOMY_FILE))
    group = next(g for g in data["labels"][NATO]["requires"] if g["name"] == "alliance")
    raw = {"version": "x", "labels": {"t": {"description": "d", "threshold": 1, "terms": {"en": ["word"]},
                                            "requires": [{"name": "g", "terms": {"en": ["other"]},
                                                          "satisfied_in": None}]}}}
    assert group["satisfied_in"]["unless"]
    for bad, message in [({"languages": ["cz"], "unless": {"cs": ["x"]}}, "unknown language code 'cz'"),
                         ({"languages": [], "unless": {"cs": ["x"]}}, "non-empty list"),
                         ({"languages": ["cs"]}, "other owners"),
                         ({"languages": ["cs"], "unless": {"cs": ["x"]}, "extra": 1}, "extra")]:
        raw["labels"]["t"]["requires"][0]["satisfied_in"] = bad
        with pytest.raises(ConfigError) as err:
            validate_taxonomy(raw, "topics.yaml")
        assert message in str(err.value), (bad, str(err.value))


# nato_defence_spending (session 5): spending, a defence word and NATO's name within 60 characters, in an order
# the term lists do not cover. Per language: the positive; NATO with a defence word and no money (troops); NATO
# with spending on something else (health); a non-member's spending named next to it.
NATO_SPENDING_ORDER = {
    "de": ("Die NATO-Staaten wollen künftig mehr für die Verteidigung ausgeben.",
           "Die NATO verlegt Truppen zur Verteidigung der Ostflanke.",
           "Die NATO-Staaten wollen künftig mehr für die Gesundheit ausgeben.",
           "Russland will künftig mehr für die Verteidigung ausgeben, warnt die NATO."),
    "en": ("NATO members will spend more on their armed forces.",
           "NATO sends troops to the defence of its eastern flank.",
           "NATO members will spend more on their hospitals.",
           "Russia will spend more on its armed forces, NATO warns."),
    "fr": ("Les pays de l'OTAN vont dépenser davantage pour leur défense.",
           "L'OTAN envoie des troupes pour la défense du flanc est.",
           "Les pays de l'OTAN vont dépenser davantage pour leurs hôpitaux.",
           "La Russie va dépenser davantage pour sa défense, selon l'OTAN."),
    "it": ("I paesi della NATO spendono sempre di più per la difesa.",
           "La NATO invia truppe per la difesa del fianco orientale.",
           "I paesi della NATO spendono sempre di più per la sanità.",
           "La Russia spende sempre di più per la difesa, avverte la NATO."),
    "es": ("Los países de la OTAN gastan cada vez más en defensa.",
           "La OTAN envía tropas para la defensa del flanco oriental.",
           "Los países de la OTAN gastan cada vez más en sanidad.",
           "Rusia gasta cada vez más en defensa, advierte la OTAN."),
    "pt": ("Os países da NATO gastam cada vez mais em defesa.",
           "A NATO envia tropas para a defesa do flanco leste.",
           "Os países da NATO gastam cada vez mais em saúde.",
           "A Rússia gasta cada vez mais em defesa, alerta a NATO."),
    "nl": ("De NAVO-landen besteden steeds meer aan defensie.",
           "De NAVO stuurt troepen voor de verdediging van de oostflank.",
           "De NAVO-landen besteden steeds meer aan gezondheidszorg.",
           "Rusland besteedt steeds meer aan defensie, waarschuwt de NAVO."),
    "pl": ("Państwa NATO przeznaczają coraz więcej na obronę.",
           "NATO wysyła żołnierzy do obrony wschodniej flanki.",
           "Państwa NATO przeznaczają coraz więcej na zdrowie.",
           "Rosja przeznacza coraz więcej na obronę, ostrzega NATO."),
    "cs": ("Státy NATO vydávají stále více na obranu.",
           "NATO posílá vojáky k obraně východního křídla.",
           "Státy NATO vydávají stále více na zdravotnictví.",
           "Rusko vydává stále více na obranu, varuje NATO."),
    "sk": ("Štáty NATO vynakladajú stále viac na obranu.",
           "NATO posiela vojakov na obranu východného krídla.",
           "Štáty NATO vynakladajú stále viac na zdravotníctvo.",
           "Rusko vynakladá stále viac na obranu, varuje NATO."),
    "ro": ("Statele NATO cheltuiesc tot mai mult pentru apărare.",
           "NATO trimite trupe pentru apărarea flancului estic.",
           "Statele NATO cheltuiesc tot mai mult pentru sănătate.",
           "Rusia cheltuiește tot mai mult pentru apărare, avertizează NATO."),
    "sv": ("Natoländerna satsar allt mer på försvaret.",
           "Nato skickar trupper till försvaret av östra flanken.",
           "Natoländerna satsar allt mer på sjukvården.",
           "Ryssland satsar allt mer på försvaret, varnar Nato."),
    "uk": ("Країни НАТО витрачають дедалі більше на оборону.",
           "НАТО направляє війська для оборони східного флангу.",
           "Країни НАТО витрачають дедалі більше на охорону здоров'я.",
           "Росія витрачає дедалі більше на оборону, попереджає НАТО."),
    "ru": ("Страны НАТО тратят всё больше на оборону.",
           "НАТО направляет войска для обороны восточного фланга.",
           "Страны НАТО тратят всё больше на здравоохранение.",
           "Россия тратит всё больше на оборону, предупреждает НАТО."),
}


@pytest.mark.parametrize("lang", sorted(NATO_SPENDING_ORDER))
def test_spending_defence_and_natos_name_in_any_order(tax, lang):
    positive, troops, health, non_member = NATO_SPENDING_ORDER[lang]
    topics, evidence = tax.label(None, positive, lang)
    assert topics == [NATO], (lang, positive)
    assert "combo:nato_defence_spending" in evidence[0]["terms"]
    for negative in (troops, health, non_member):
        assert labels(tax, None, negative, lang) == [], (lang, negative)


def test_armament_spending_and_budget_destined_for_defence_terms(tax):
    """Term gaps of session 5: Czech/Slovak "zbrojní výdaje"/"zbrojné výdavky", Polish "wydatki zbrojeniowe",
    Romanian "bugetul destinat/alocat apărării"; each with a non-member counter-example."""
    cases = [("cs", "Vláda zvýší zbrojní výdaje o tři miliardy.", "Rusko zvýší zbrojní výdaje o tři miliardy."),
             ("sk", "Vláda nezvýši zbrojné výdavky.", "Rusko zvýši zbrojné výdavky."),
             ("pl", "NATO: wydatki zbrojeniowe rosną.", "Rosja: wydatki zbrojeniowe rosną."),
             ("ro", "Guvernul va dubla bugetul destinat apărării.", "Rusia va dubla bugetul destinat apărării."),
             ("ro", "Guvernul majorează bugetul alocat apărării.", "Ucraina majorează bugetul alocat apărării.")]
    for lang, positive, negative in cases:
        assert labels(tax, None, positive, lang) == [NATO], (lang, positive)
        assert labels(tax, None, negative, lang) == [], (lang, negative)
    # A deficit figure that mentions arms spending is about public finances (held-out 4 pl negative phrasing).
    assert labels(tax, None, "Deficyt finansów publicznych przebił 200 mld zł (prawie 7 proc. PKB), a kwota nie "
                             "uwzględnia części wydatków zbrojeniowych.", "pl") == []


# Session 5, round 2: a member named anywhere in the article is the owner of its defence budget when no other
# state (or a non-member's currency) is named anywhere (requires.alliance.satisfied_in.owners).
OWNER_ANYWHERE = [
    # (lang, owner named far from or before the budget, the same budget with another state named too)
    ("de", "Die Bundesregierung hat den Entwurf für 2026 beschlossen. Der Wehretat steigt auf 108 Milliarden Euro.",
     "Die Bundesregierung hat den Entwurf für 2026 beschlossen. Der Wehretat steigt auf 108 Milliarden Euro, "
     "sagt Russland."),
    ("en", "The White House has published its draft budget for fiscal 2026. It provides for an increase in "
           "military spending to $1.01 trillion.",
     "The White House has published its draft budget for fiscal 2026. Beijing's plan provides for an increase "
     "in military spending to 1.7 trillion yuan."),
    ("ru", "Бундестаг утвердил государственный бюджет Германии на 2026 год. Оборонные расходы вырастут до 108 млрд евро.",
     "Бундестаг утвердил государственный бюджет Германии на 2026 год. Оборонные расходы Японии вырастут до 9 трлн иен."),
    ("uk", "Про це повідомляє Білий дім. Уряд планує витратити на оборону понад трильйон доларів.",
     "Трамп заявив, що Китай планує витратити на оборону понад трильйон юанів."),
    ("pt", "Portugal apresentou ontem as contas do Estado. O orçamento da defesa tem um crescimento de 14,8 %.",
     "O orçamento da defesa do Brasil tem um crescimento de 14,8 %, segundo a imprensa de Portugal."),
    ("es", "El Consejo de Ministros de España aprobó ayer las cuentas del Estado. El presupuesto de defensa crece un 7 %.",
     "El Consejo de Ministros de España aprobó ayer las cuentas del Estado. El presupuesto de defensa de México "
     "crece un 7 %."),
]


@pytest.mark.parametrize("lang,positive,negative", OWNER_ANYWHERE)
def test_a_member_named_anywhere_owns_the_budget_when_no_other_state_is_named(tax, lang, positive, negative):
    result = tax.score_label(NATO, None, positive, lang)
    assert result["assigned"] and result["satisfied_in"] == {"alliance": "owner"}, (lang, result["reason"])
    assert labels(tax, None, negative, lang) == [], (lang, negative)
    # Without the member's name the budget has no owner (these languages are written by non-members too).
    unnamed = {"de": "Der Wehretat steigt auf 108 Milliarden Euro.",
               "en": "It provides for an increase in military spending to $1.01 trillion.",
               "ru": "Оборонные расходы вырастут до 108 млрд евро.",
               "uk": "Уряд планує витратити на оборону понад трильйон.",
               "pt": "O orçamento da defesa tem um crescimento de 14,8 %.",
               "es": "El presupuesto de defensa crece un 7 %."}[lang]
    assert labels(tax, None, unnamed, lang) == [], (lang, unnamed)


def test_other_states_and_non_member_currencies_veto_a_budget_next_to_them(tax):
    """`other_state_budget`: states `non_nato` does not list (Serbia, Brazil, Moldova ...) and non-members'
    currencies, named next to a budget, cancel that match even when the alliance's target is stated."""
    cases = [("ru", "Президент Сербии заявил о рекордных расходах на оборону страны в размере 2,65% ВВП.",
              "Президент Польши заявил о рекордных расходах на оборону страны в размере 4,7% ВВП, цель НАТО."),
             ("it", "Il ministero della Difesa del Brasile punta a un aumento della spesa militare del 37 per cento.",
              "Il ministero della Difesa punta a un aumento della spesa militare del 37 per cento, dice la NATO."),
             ("en", "Last year, the country's defense budget rose by 7.6 percent to 954 billion yuan.",
              "Last year, the country's defense budget rose by 7.6 percent to 95 billion euros, NATO said.")]
    for lang, negative, positive in cases:
        assert labels(tax, None, negative, lang) == [], (lang, negative)
        assert labels(tax, None, positive, lang) == [NATO], (lang, positive)


def test_asset_freeze_verbs_and_definite_restrictive_measures(tax):
    """Held-out 8 sanctions misses as general inflections: Polish "zamroziła" (to freeze, past tense) in the
    asset-freeze combo, Romanian "măsurile restrictive" (definite form); counter-examples without sanctions."""
    assert labels(tax, None, "Unia Europejska zamroziła aktywa rosyjskich oligarchów warte 30 mld euro.", "pl") == \
        [SANCTIONS]
    assert labels(tax, None, "Klub zamroził transfery piłkarzy do końca sezonu.", "pl") == []
    assert labels(tax, None, "Consiliul Uniunii Europene a prelungit măsurile restrictive care vizează persoanele "
                             "responsabile de subminarea integrității Ucrainei.", "ro") == [SANCTIONS]
    assert labels(tax, None, "Primăria a impus măsurile restrictive de trafic în centrul orașului.", "ro") == []


# ---------------------------------------------------------------------------------------------------------------
# Round 7 (held-out 9 classes, taxonomy 2026.12.03-1)

ARMS_OWNER = {"de": "Deutschland", "en": "Britain", "fr": "La France", "it": "L'Italia", "es": "España",
              "pt": "Portugal", "nl": "Nederland", "pl": "Polska", "cs": "Česko", "sk": "Slovensko", "ro": "România",
              "sv": "Sverige", "uk": "Польща", "ru": "Германия"}
ARMS_NON_MEMBER = {"de": "Russland", "en": "Russia", "fr": "La Russie", "it": "La Russia", "es": "Rusia",
                   "pt": "A Rússia", "nl": "Rusland", "pl": "Rosja", "cs": "Rusko", "sk": "Rusko", "ro": "Rusia",
                   "sv": "Ryssland", "uk": "Росія", "ru": "Россия"}
ARMS_MONEY = {"de": "für 8 Milliarden Euro", "en": "for 8 billion pounds", "fr": "pour 8 milliards d'euros",
              "it": "per 8 miliardi di euro", "es": "por 800 millones de euros", "pt": "por 800 milhões de euros",
              "nl": "voor 8 miljard euro", "pl": "za 8 mld zł", "cs": "za 8 miliard korun", "sk": "za 8 miliardy eur",
              "ro": "pentru 8 miliarde de lei", "sv": "för 8 miljarder kronor", "uk": "за 8 млрд доларів",
              "ru": "за 8 млрд евро"}
ARMS_BUY = {"de": "kauft", "en": "buys", "fr": "achète", "it": "compra", "es": "compra", "pt": "compra",
            "nl": "koopt", "pl": "kupi", "cs": "koupí", "sk": "kúpi", "ro": "cumpără", "sv": "köper", "uk": "купує",
            "ru": "покупает"}
ARMS_WEAPON = {"de": "Kampfjets", "en": "fighter jets", "fr": "avions de combat", "it": "carri armati",
               "es": "aviones de combate", "pt": "caças", "nl": "gevechtsvliegtuigen", "pl": "czołgi",
               "cs": "stíhačky", "sk": "stíhačky", "ro": "avioane de luptă", "sv": "stridsflygplan", "uk": "винищувачі",
               "ru": "истребители"}
ARMS_CIVIL = {"de": "Züge", "en": "trains", "fr": "des trains", "it": "treni", "es": "trenes", "pt": "comboios",
              "nl": "treinen", "pl": "pociągi", "cs": "vlaky", "sk": "vlaky", "ro": "trenuri", "sv": "tåg",
              "uk": "потяги", "ru": "поезда"}


def _arms(tax, owner, buy, weapon, money, lang):
    text = f"{owner} {buy} {weapon} {money}."
    return text, tax.label(None, text, lang)


def test_every_weapon_of_the_arms_purchase_combo_has_a_positive_and_hard_negatives(tax, taxonomy_data):
    """member_arms_purchase: a member buying a weapon system for an amount of money is a member's defence spending
    (the owner: its language, or the member named with no other state); a non-member buying it, or the purchase with
    no amount, is not."""
    combo = _combo(taxonomy_data, "member_arms_purchase")
    checked = 0
    for lang in ARMS_OWNER:
        for term in [t["pattern"] for t in combo["groups"][0].get(lang, []) + combo["groups"][0]["any"]]:
            weapon = _example(term)
            text, (topics, evidence) = _arms(tax, ARMS_OWNER[lang], ARMS_BUY[lang], weapon, ARMS_MONEY[lang], lang)
            assert topics == [NATO], (lang, term, text)
            assert "combo:member_arms_purchase" in evidence[0]["terms"], (lang, term)
            text, (topics, _) = _arms(tax, ARMS_NON_MEMBER[lang], ARMS_BUY[lang], weapon, ARMS_MONEY[lang], lang)
            assert topics == [], (lang, term, text)
            text, (topics, _) = _arms(tax, ARMS_OWNER[lang], ARMS_BUY[lang], weapon, "", lang)
            assert topics == [], (lang, term, text)
            checked += 1
    assert checked > 250


def test_every_purchase_word_and_amount_of_the_arms_purchase_combo_has_a_positive_and_hard_negatives(tax, taxonomy_data):
    """Each purchase word and each amount of money forms the combo with the language's member and a weapon, and not
    with a civilian purchase (trains) or a non-member buyer."""
    combo = _combo(taxonomy_data, "member_arms_purchase")
    checked = 0
    for group in (1, 2):  # groups: weapons, purchase words, amounts
        for lang, terms in combo["groups"][group].items():
            for term in terms:
                buy = _example(term["pattern"]) if group == 1 else ARMS_BUY[lang]
                money = _example(term["pattern"]) if group == 2 else ARMS_MONEY[lang]
                text, (topics, _) = _arms(tax, ARMS_OWNER[lang], buy, ARMS_WEAPON[lang], money, lang)
                assert topics == [NATO], (lang, term["pattern"], text)
                text, (topics, _) = _arms(tax, ARMS_OWNER[lang], buy, ARMS_CIVIL[lang], money, lang)
                assert topics == [], (lang, term["pattern"], text)
                text, (topics, _) = _arms(tax, ARMS_NON_MEMBER[lang], buy, ARMS_WEAPON[lang], money, lang)
                assert topics == [], (lang, term["pattern"], text)
                checked += 1
    assert checked > 100


SPEND_MONEY = {"de": "gibt mehr Geld", "en": "will spend more money", "fr": "consacre plus d'argent",
               "it": "stanzia più fondi", "es": "destina más dinero", "pt": "destina mais dinheiro",
               "nl": "geeft meer geld", "pl": "przeznacza więcej pieniędzy", "cs": "dá více peněz",
               "sk": "dá viac peňazí", "ro": "alocă mai mulți bani", "sv": "lägger mer pengar",
               "uk": "спрямовує більше коштів", "ru": "направляет больше средств"}
SPEND_HEALTH = {"de": "für die Gesundheit", "en": "on health", "fr": "à la santé", "it": "per la sanità",
                "es": "a la sanidad", "pt": "à saúde", "nl": "aan zorg", "pl": "na zdrowie", "cs": "na zdravotnictví",
                "sk": "na zdravotníctvo", "ro": "pentru sănătate", "sv": "på vården", "uk": "на медицину",
                "ru": "на медицину"}
# "in defence of" idioms next to a recipient phrase (`not_near`)
SPEND_IDIOM = {
    "de": "Deutschland gibt mehr Geld für die Verteidigung der Menschenrechte.",
    "en": "Britain will spend more money on defence lawyers for asylum seekers.",
    "fr": "La France consacre plus d'argent à la défense des droits de l'homme.",
    "it": "L'Italia stanzia più fondi per la difesa dei diritti umani.",
    "es": "España destina más dinero a la defensa de los derechos humanos.",
    "pt": "Portugal destina mais dinheiro à defesa dos direitos humanos.",
    "pl": "Polska przeznacza więcej pieniędzy na obronę praw człowieka.",
    "cs": "Česko dá více peněz na obranu práv menšin.",
    "sk": "Slovensko dá viac peňazí na obranu práv menšín.",
    "uk": "Польща спрямовує більше коштів на оборону прав людини.",
    "ru": "Германия направляет больше средств на оборону прав человека.",
}


def test_every_recipient_phrase_of_spending_for_defence_has_a_positive_and_hard_negatives(tax, taxonomy_data):
    """spending_for_defence: money spent on defence in any word order ("на оборону буде витрачатися", "destinado
    ... a defensa"); each recipient phrase with a member as owner; the same with a non-member, and the same money
    for health, are not labeled."""
    combo = _combo(taxonomy_data, "spending_for_defence")
    checked = 0
    for lang, terms in combo["groups"][0].items():  # groups: recipient phrases, spending words
        for term in terms:
            phrase = _example(term["pattern"])
            text = f"{ARMS_OWNER[lang]} {SPEND_MONEY[lang]} {phrase}."
            topics, evidence = tax.label(None, text, lang)
            assert topics == [NATO], (lang, term["pattern"], text)
            assert "combo:spending_for_defence" in evidence[0]["terms"], (lang, term["pattern"])
            text = f"{ARMS_NON_MEMBER[lang]} {SPEND_MONEY[lang]} {phrase}."
            assert labels(tax, None, text, lang) == [], (lang, term["pattern"], text)
            checked += 1
        text = f"{ARMS_OWNER[lang]} {SPEND_MONEY[lang]} {SPEND_HEALTH[lang]}."
        assert labels(tax, None, text, lang) == [], (lang, text)
    assert checked > 80


@pytest.mark.parametrize("lang", sorted(SPEND_IDIOM))
def test_in_defence_of_idioms_are_no_spending_for_defence(tax, lang):
    assert labels(tax, None, SPEND_IDIOM[lang], lang) == [], (lang, SPEND_IDIOM[lang])


@pytest.mark.parametrize("lang,positive", [
    # the reversed word order and the verbs of held-out 9's leaders' statements, as general phrasings
    ("uk", "Польща: з 2027 року на оборону буде витрачатися на 13,4 мільярда більше."),
    ("es", "El Gobierno de España había destinado 10.471 millones de euros a defensa."),
    ("pt", "Portugal vai investir mais na defesa já este ano."),
    ("it", "L'Italia destinerà nuovi stanziamenti alla difesa."),
])
def test_spending_for_defence_in_the_order_no_term_covers(tax, lang, positive):
    topics, evidence = tax.label(None, positive, lang)
    assert topics == [NATO], (lang, positive)
    # the same sentence about a football team's defence is vetoed (sport)
    assert labels(tax, None, positive + {"uk": " Тренер команди задоволений.", "es": " El entrenador lo celebra.",
                                         "pt": " O treinador está satisfeito.",
                                         "it": " La squadra ha subito un gol."}[lang], lang) == [], lang


@pytest.mark.parametrize("lang,positive,negative", [
    # money nouns and amounts as budget words of a member's own institution (member_institution_budget)
    ("fr", "Le ministère des Armées a besoin de bien plus d'argent.",
     "Le ministère des Armées a besoin de bien plus de soldats."),
    ("en", "The Pentagon will get an extra 800 million next year.",
     "The Pentagon said China's army will get an extra 800 million next year."),
    ("de", "Die Bundeswehr bekommt mehr Geld.", "Die Bundeswehr bekommt mehr Soldaten."),
    ("pl", "Ministerstwo Obrony Narodowej dostanie 10 mld zł więcej.",
     "Ministerstwo Obrony Narodowej dostanie 10 tys. żołnierzy więcej."),
    ("ru", "Бундесвер получит деньги на новые самолёты.", "Бундесвер получит новые самолёты."),
])
def test_money_for_a_members_defence_institution_without_a_budget_word(tax, lang, positive, negative):
    assert labels(tax, None, positive, lang) == [NATO], (lang, positive)
    assert labels(tax, None, negative, lang) == [], (lang, negative)


def test_every_money_budget_word_of_member_institutions_has_a_positive_and_a_hard_negative(tax, taxonomy_data):
    """Each budget word of member_institution_budget (round 7 added money nouns and amounts) next to the Pentagon
    makes the label; next to the Chinese army (a non-member's institution, no member one) it does not."""
    combo = _combo(taxonomy_data, "member_institution_budget")
    chinese_army = {"de": "Chinas Armee", "en": "China's army", "fr": "l'armée chinoise", "it": "l'esercito cinese",
                    "es": "el ejército chino", "pt": "o exército chinês", "nl": "het Chinese leger",
                    "pl": "chińska armia", "cs": "čínská armáda", "sk": "čínska armáda", "ro": "armata chineză",
                    "sv": "Kinas armé", "uk": "китайська армія", "ru": "китайская армия"}
    checked = 0
    for lang, terms in combo["groups"][0].items():
        institution = _example(combo["groups"][1][lang][0]["pattern"]).capitalize()
        for term in terms:
            word = _example(term["pattern"])
            assert labels(tax, None, f"{institution}: {word}.", lang) == [NATO], (lang, term["pattern"])
            assert labels(tax, None, f"{chinese_army[lang]}: {word}.", lang) == [], (lang, term["pattern"])
            checked += 1
    assert checked > 100


@pytest.mark.parametrize("lang,positive,negative", [
    ("en", "The UK Government has announced it will increase its defence spending.",
     "The Austrian Government has announced it will increase its defence spending."),
    ("en", "The chancellor will announce a rise in defence spending.",
     "Austria's chancellor will announce a rise in defence spending."),
    ("de", "Schatzkanzlerin Reeves kündigt eine Erhöhung der Verteidigungsausgaben an.",
     "Die Schweiz kündigt eine Erhöhung der Verteidigungsausgaben an."),
    ("fr", "Le chancelier de l'Échiquier annonce une hausse du budget de la défense.",
     "Le chancelier autrichien annonce une hausse du budget de la défense."),
])
def test_the_uk_and_its_chancellor_own_a_defence_budget(tax, lang, positive, negative):
    assert labels(tax, None, positive, lang) == [NATO], (lang, positive)
    assert labels(tax, None, negative, lang) == [], (lang, negative)


def _coalition_terms(taxonomy_data):
    return [t["pattern"] for t in taxonomy_data["labels"][COW]["requires"][0]["terms"]["any"]]


def test_every_round_7_coalition_co_term_has_a_positive_and_a_hard_negative(tax, taxonomy_data):
    """The coalition's name with Russia, Putin, a peace deal, a security or defence word or a leaders' video
    meeting, and no Ukraine (held-out 9: "koalicja chętnych ... zespole bezpieczeństwa i obronności", "на віртуальну
    зустріч збереться коаліція охочих"); the same next to another security coalition (Hormuz) is vetoed, and the
    name alone stays out."""
    terms = _coalition_terms(taxonomy_data)
    new = terms[terms.index("russia*"):]
    assert len(new) > 80
    for pattern in new:
        word = _example(pattern)
        assert labels(tax, None, f"Die Koalition der Willigen trifft sich: {word}.", "de") == [COW], pattern
        assert labels(tax, None, f"Die Koalition der Willigen in der Straße von Hormuz trifft sich: {word}.",
                      "de") == [], pattern
    assert labels(tax, None, "Die Koalition der Willigen trifft sich.", "de") == []


@pytest.mark.parametrize("lang,positive,negative", [
    ("pl", "Istnieją trzy cele, dla których powstała koalicja chętnych - powiedział ekspert ds. bezpieczeństwa.",
     "Istnieją trzy cele, dla których powstała koalicja chętnych w Sejmie - powiedział poseł."),
    ("uk", "Сьогодні на віртуальну зустріч збереться коаліція охочих.",
     "Сьогодні на зустріч збереться коаліція охочих з питань клімату."),
    ("en", "The coalition of the willing discussed a peace plan.",
     "The coalition of the willing discussed the Iraq war of 2003 and its peace plan."),
    ("en", "Leaders of the coalition of the willing met to discuss security.",
     "A coalition of the willing to secure shipping in the Red Sea met to discuss security."),
    ("cs", "Koalice ochotných jednala o bezpečnosti.", "Koalice ochotných jednala o rozpočtu obce."),
    ("ro", "Coaliția de voință a discutat despre securitate.", "Coaliția de voință a discutat despre buget."),
])
def test_coalition_named_with_security_or_leaders_context_without_ukraine(tax, lang, positive, negative):
    assert labels(tax, None, positive, lang) == [COW], (lang, positive)
    assert COW not in labels(tax, None, negative, lang), (lang, negative)


SANCTIONS_PACKAGE_TERM = {"en": "the sanctions package", "de": "das Sanktionspaket", "fr": "le paquet de sanctions",
                          "it": "il pacchetto di sanzioni", "es": "el paquete de sanciones", "pt": "o pacote de sanções",
                          "nl": "het sanctiepakket", "pl": "pakiet sankcji", "cs": "balík sankcí", "sk": "balík sankcií",
                          "ro": "pachetul de sancțiuni", "sv": "sanktionspaketet", "uk": "пакет санкцій",
                          "ru": "пакет санкций"}
FILLER = " ".join(["Lorem ipsum dolor sit amet."] * 12)  # 335 characters: beyond state_actor's window (300)
_PACKAGE_STEMS = ("pak", "pac", "paq", "bal", "пакет", "pach", "round", "runde", "ronda", "rodada", "train de")


def _numbered_package_terms(taxonomy_data):
    terms = taxonomy_data["labels"][SANCTIONS]["requires"][0]["terms"]
    return [(lang, t["pattern"]) for lang, lst in terms.items() if lang != "any" for t in lst
            if any(stem in t["pattern"] for stem in _PACKAGE_STEMS)]


def test_every_numbered_sanctions_package_term_has_a_positive_and_hard_negatives(tax, taxonomy_data):
    """A numbered package of sanctions stands for the state actor (the EU only implied: "El nuevo paquete de
    sanciones, el decimoséptimo", "Ce quatrième paquet", "19. pakietem sankcji"): each ordinal-and-package term next
    to a sanctions term makes the label; the sanctions term alone (an unnumbered package), or with the numbered
    package beyond the requirement's window, does not."""
    checked = 0
    for lang, pattern in _numbered_package_terms(taxonomy_data):
        text = f"{SANCTIONS_PACKAGE_TERM[lang]}: {_example(pattern)}."
        assert labels(tax, None, text, lang) == [SANCTIONS], (lang, pattern, text)
        if not any(stem in pattern for stem in ("sanc", "sanç", "sank", "санкц")):  # the phrase is no sanctions match itself
            far = f"{SANCTIONS_PACKAGE_TERM[lang]}. {FILLER} {_example(pattern)}."
            assert labels(tax, None, far, lang) == [], (lang, pattern, far)
        checked += 1
    for lang, term in SANCTIONS_PACKAGE_TERM.items():
        assert labels(tax, None, f"{term}.", lang) == [], (lang, term)
    assert checked > 400


@pytest.mark.parametrize("lang,positive,negative", [
    ("es", "El nuevo paquete de sanciones, el decimoséptimo, está ya prácticamente cerrado.",
     "La DGT prepara un nuevo paquete de sanciones para los conductores."),
    ("fr", "Ce quatrième paquet de sanctions élargira la liste noire.",
     "Ce nouveau paquet de sanctions vise les fraudeurs aux allocations."),
    ("pl", "Warszawa apeluje o przyspieszenie prac nad 19. pakietem sankcji.",
     "Warszawa apeluje o przyspieszenie prac nad pakietem sankcji dla kierowców."),
    ("de", "Das 17. Sanktionspaket ist beschlossen.", "Das Paket ist beschlossen, am 17. Mai drohen Sanktionen."),
    ("en", "The 18th sanctions package is ready.",
     "Sanctions for late tax filers rise. " + FILLER + " The 18th package of reforms is ready."),
])
def test_numbered_sanctions_packages_without_a_named_state(tax, lang, positive, negative):
    assert labels(tax, None, positive, lang) == [SANCTIONS], (lang, positive)
    assert labels(tax, None, negative, lang) == [], (lang, negative)
