"""The RAG prompt settings (templates, few-shot turns, stop sequences) and answer extraction,
checked against hand-written strings; config errors name the file and the key."""

from __future__ import annotations

import json
import re

import pytest

from ragsift.errors import DataFormatError
from ragsift.models.generation.answers import first_line, short_answer
from ragsift.models.generation.prompts import PromptError, PromptFormat, cut_at_stop, plain_chat


def test_messages_render_the_templates_and_few_shot_turns():
    fmt = PromptFormat(prompt_template="P:\n{passages}\nQ: {question} {{x}}",
                       prompt_template_no_context="Q: {question}",
                       few_shot=(("Who?", "Ann"), ("Where?", "Oslo", "Oslo: a city.")))
    assert fmt.messages("Why?", ["a: b", "c: d"]) == [
        {"role": "user", "content": "Q: Who?"},
        {"role": "assistant", "content": "Ann"},
        {"role": "user", "content": "P:\n[1] Oslo: a city.\nQ: Where? {x}"},
        {"role": "assistant", "content": "Oslo"},
        {"role": "user", "content": "P:\n[1] a: b\n[2] c: d\nQ: Why? {x}"}]
    # without passages the examples come without theirs (the no-context template)
    assert fmt.messages("Why?", []) == [
        {"role": "user", "content": "Q: Who?"}, {"role": "assistant", "content": "Ann"},
        {"role": "user", "content": "Q: Where?"}, {"role": "assistant", "content": "Oslo"},
        {"role": "user", "content": "Q: Why?"}]
    assert plain_chat(fmt.messages("Why?", ["a: b"])[2:]) == \
        "P:\n[1] Oslo: a city.\nQ: Where? {x}\nAnswer: Oslo\n\nP:\n[1] a: b\nQ: Why? {x}\nAnswer:"
    assert cut_at_stop("Oslo.\nNorway", ["\n"]) == "Oslo."
    assert cut_at_stop("Oslo", ["\n", "."]) == "Oslo"


@pytest.mark.parametrize("settings,key,message", [
    ({"prompt_template": "{passages} {query}"}, "prompt_template", "unknown placeholder {query}"),
    ({"prompt_template": "{question}"}, "prompt_template", "no {passages}"),
    ({"prompt_template_no_context": "{passages} {question}"}, "prompt_template_no_context",
     "unknown placeholder {passages}"),
    ({"prompt_template": "{passages} {} {question}"}, "prompt_template", "placeholder {}"),
    ({"prompt_template": "{passages {question}"}, "prompt_template", "malformed template"),
    ({"few_shot": (("only a question",),)}, "few_shot[0]", "[question, answer]"),
    ({"stop": ("\n", "")}, "stop[1]", "empty stop string"),
    ({"answer_extraction": "regex"}, "answer_extraction", "unknown 'regex'"),
])
def test_prompt_errors_name_the_key(settings, key, message):
    with pytest.raises(PromptError, match=f"^{re.escape(key)}: .*{re.escape(message)}") as caught:
        PromptFormat(**settings)
    assert caught.value.key == key


def test_rag_config_prompt_errors_name_the_file_and_key(tmp_path):
    from ragsift.cli.main import main

    questions = tmp_path / "qa.jsonl"
    questions.write_text(json.dumps({"id": "q", "question": "Q?", "answer": "a",
                                     "paragraphs": []}) + "\n")
    config = tmp_path / "rag.yaml"
    config.write_text('generator: none\nprompt_template: "{passages} {query}"\n')
    with pytest.raises(DataFormatError, match=r"rag\.yaml, line 2, field \"prompt_template\": "
                                              r"unknown placeholder \{query\}"):
        from ragsift.cli.rag import run

        run(_args(questions, config, tmp_path))
    assert main(["rag", "--questions", str(questions), "--config", str(config),
                 "--out", str(tmp_path / "out")]) != 0
    config.write_text('generator: none\nfew_shot: [["Who?", "Ann"], ["Where?"]]\n')
    with pytest.raises(DataFormatError, match=r"rag\.yaml, line 2, field \"few_shot\[1\]\""):
        from ragsift.cli.rag import run

        run(_args(questions, config, tmp_path))


def _args(questions, config, tmp_path):
    import argparse

    return argparse.Namespace(questions=str(questions), config=str(config), set=[],
                              collection=None, limit=None, out=str(tmp_path / "out"))


@pytest.mark.parametrize("text,question,expected", [
    (" Paris", "", "Paris"),
    ("Paris [1].\nParis is in France.", "", "Paris"),
    ("The answer is Paris [1][2].", "", "Paris"),
    ("Answer: The answer is: 1945.", "", "1945"),
    ("St. Louis, Missouri. It is a city.", "", "St. Louis, Missouri"),
    ("J. K. Rowling wrote it.", "", "J. K. Rowling wrote it"),
    ("Guardians of the Galaxy Vol. 2", "", "Guardians of the Galaxy Vol. 2"),
    ("C.J. Hunter III. He won.", "", "C.J. Hunter III"),
    ("Yes, both are rivers.", "Are the Nile and the Amazon both rivers?", "yes"),
    ("No. They are not.", "Did Ann and Bo meet?", "no"),
    ("Yes Minister", "Which sitcom starred Paul Eddington?", "Yes Minister"),
    ("Noel Gallagher", "Is this band led by Noel Gallagher or Liam?", "Noel Gallagher"),
    ("", "", ""),
])
def test_short_answer_by_hand(text, question, expected):
    assert short_answer(text, question) == expected


def test_first_line_keeps_the_sentence():
    assert first_line("\n\nAnswer: Paris [1]. It is big.\nMore") == "Paris. It is big."
