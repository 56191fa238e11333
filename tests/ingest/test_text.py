"""Plain text from feed markup: teasers cut at a word, HTML made inert, headers kept to one line."""

from __future__ import annotations

from digest.ingest.text import ELLIPSIS, TEASER_LENGTH, cut_at_word, one_line, plain_text, teaser


def test_teaser_length_is_two_hundred() -> None:
    """The default teaser limit is the documented 200 characters."""
    assert TEASER_LENGTH == 200
    assert ELLIPSIS == "…"


def test_text_exactly_at_limit_is_not_cut() -> None:
    """Text of exactly 200 characters comes back whole, with no ellipsis."""
    text = "abc " * 49 + "abcd"
    assert len(text) == 200
    assert cut_at_word(text) == text
    assert teaser(text, None) == text


def test_text_one_over_limit_is_cut() -> None:
    """Text of 201 characters is cut and ends with the ellipsis."""
    text = "abc " * 50 + "z"
    assert len(text) == 201
    result = cut_at_word(text)
    assert result.endswith(ELLIPSIS)
    assert len(result) <= 200


def test_long_text_is_cut_at_a_space() -> None:
    """Long text is cut after a whole word: the kept part is a prefix ending before a space."""
    text = " ".join(f"w{i:03d}x" for i in range(100))  # words of 5 characters
    result = cut_at_word(text)
    assert len(result) <= 200
    assert result.endswith(ELLIPSIS)
    kept = result[: -len(ELLIPSIS)]
    assert text.startswith(kept)
    assert text[len(kept)] == " "
    # The cut does not throw away more than one word's worth of text.
    assert len(kept) >= 200 - len("w000x ") - len(ELLIPSIS)


def test_cut_keeps_a_word_that_ends_just_before_the_limit() -> None:
    """A word ending at character 199 is kept: 199 characters plus the ellipsis make 200."""
    text = "a" * 194 + " bcde" + " fghij"  # "bcde" ends at index 198
    assert len(text[: text.index(" fghij")]) == 199
    assert cut_at_word(text) == "a" * 194 + " bcde" + ELLIPSIS


def test_one_giant_word_is_cut_hard() -> None:
    """A single word longer than the limit is cut mid-word to exactly the limit."""
    text = "x" * 500
    result = cut_at_word(text)
    assert result == "x" * 199 + ELLIPSIS
    assert len(result) == 200


def test_early_space_then_giant_word_is_cut_hard() -> None:
    """A space in the first half is no boundary worth keeping: the giant word is cut hard."""
    text = "Intro " + "y" * 400
    result = cut_at_word(text)
    assert len(result) == 200
    assert result == text[:199] + ELLIPSIS


def test_trailing_punctuation_before_ellipsis_is_removed() -> None:
    """Commas, semicolons, colons, full stops and dashes are not left before the ellipsis."""
    for mark in [",", ";", ":", ".", " -", " —"]:
        text = ("word" + mark + " ") * 60
        result = cut_at_word(text)
        assert result.endswith("word" + ELLIPSIS), (mark, result[-10:])
        assert len(result) <= 200


def test_custom_limit_is_respected() -> None:
    """cut_at_word honours a limit other than the default."""
    result = cut_at_word("one two three four five six", 12)
    assert result == "one two" + ELLIPSIS
    assert len(result) <= 12


def test_teaser_falls_back_to_content_when_summary_empty() -> None:
    """An empty, missing or markup-only summary gives way to the lead of the content."""
    content = "<p>The lead of the <em>article</em>.</p><p>More.</p>"
    assert teaser("", content) == "The lead of the article. More."
    assert teaser(None, content) == "The lead of the article. More."
    assert teaser("<p> </p>", content) == "The lead of the article. More."


def test_teaser_prefers_summary_over_content() -> None:
    """When both are there, the summary is the teaser."""
    assert teaser("Short summary", "<p>Long content</p>") == "Short summary"


def test_teaser_of_nothing_is_empty() -> None:
    """No summary and no content make an empty teaser, not an ellipsis."""
    assert teaser(None, None) == ""
    assert teaser("", "") == ""


def test_long_content_teaser_is_cut() -> None:
    """A teaser taken from long content is cut at a word to the limit."""
    content = "<p>" + "lorem ipsum " * 100 + "</p>"
    result = teaser(None, content)
    assert result.endswith(ELLIPSIS)
    assert len(result) <= 200
    assert "<" not in result


def test_plain_text_strips_tags_and_decodes_entities() -> None:
    """Tags go, entities are decoded once: ``&amp;`` becomes ``&``."""
    markup = '<p class="x">Tom &amp; Jerry &lt;3 <a href="https://e.example/">caf&eacute;</a></p>'
    assert plain_text(markup) == "Tom & Jerry <3 café"


def test_plain_text_drops_script_and_style_contents() -> None:
    """Script and style elements are dropped with their contents."""
    markup = "<p>Before</p><script>alert('owned')</script><style>p{color:red}</style><p>After</p>"
    result = plain_text(markup)
    assert result == "Before After"
    assert "alert" not in result
    assert "color" not in result


def test_plain_text_separates_block_elements() -> None:
    """Text of adjacent paragraphs, list items and line breaks does not run together."""
    assert plain_text("<p>One</p><p>Two</p><ul><li>Three</li><li>Four</li></ul>Five<br>Six") == (
        "One Two Three Four Five Six"
    )


def test_plain_text_of_nothing_is_empty() -> None:
    """None and the empty string give the empty string."""
    assert plain_text(None) == ""
    assert plain_text("") == ""


def test_plain_text_is_one_line() -> None:
    """Newlines and tabs inside markup collapse to single spaces."""
    assert plain_text("<p>a\r\n\tb</p>\n\n<p>c</p>") == "a b c"


def test_one_line_removes_line_breaks_and_controls() -> None:
    """CR, LF, NUL, other C0/C1 controls and U+2028/U+2029 become single spaces."""
    text = "Subject\r\nBcc: evil@example.com\x00and\x1b[31m\x85next\u2028line\u2029para\t end"
    result = one_line(text)
    assert result == "Subject Bcc: evil@example.com and [31m next line para end"
    for bad in "\r\n\x00\x1b\x85\u2028\u2029\t":
        assert bad not in result


def test_one_line_trims_and_bounds_length() -> None:
    """one_line strips surrounding space and cuts at its limit."""
    assert one_line("  padded  ") == "padded"
    assert one_line(None) == ""
    result = one_line("word " * 200, 50)
    assert len(result) <= 50
    assert result.endswith(ELLIPSIS)


BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_bidi_overrides_and_isolates_are_removed_everywhere() -> None:
    """Embeddings, overrides and isolates go from headlines, names and teasers, typed or as
    entities, so "Invoice\\u202efdp.exe" cannot show as "Invoiceexe.pdf"."""
    assert one_line("Invoice\u202efdp.exe") == "Invoicefdp.exe"
    assert one_line(f"a{BIDI_CONTROLS}b") == "ab"
    assert plain_text("<p>Invoice&#x202E;fdp.exe &#8294;x&#8297;</p>") == "Invoicefdp.exe x"
    assert teaser("Pay \u2067now\u2069 \u202dplease", None) == "Pay now please"
    for control in BIDI_CONTROLS:
        assert control not in one_line(f"x {control} y") + plain_text(f"x {control} y")


def test_bidi_marks_stay_in_right_to_left_text() -> None:
    """Left-to-right, right-to-left and Arabic letter marks, which place punctuation and
    numbers in Urdu and Arabic text and cannot reverse a run, are kept."""
    urdu = "قیمت \u200f۲۰۰\u200f روپے\u061c \u200eWHO\u200e"
    assert one_line(urdu) == urdu
    assert plain_text(f"<p>{urdu}</p>") == urdu
