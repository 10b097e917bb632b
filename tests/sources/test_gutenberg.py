"""Project Gutenberg boilerplate stripping on texts with the real marker forms."""

from redrobe.sources.gutenberg import strip_gutenberg

MODERN = """\
The Project Gutenberg EBook of Hamlet, by William Shakespeare

This eBook is for the use of anyone anywhere at no cost and with
almost no restrictions whatsoever.  You may copy it, give it away or
re-use it under the terms of the Project Gutenberg License included
with this eBook or online at www.gutenberg.org

Title: Hamlet
Author: William Shakespeare
Release Date: November 1998 [EBook #1524]
Language: English

*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***




Produced by Dianne Bean and David Widger
of the Online Distributed Proofreading Team




THE TRAGEDY OF HAMLET, PRINCE OF DENMARK

Ber. Who's there?

Fran. Nay, answer me. Stand and unfold yourself.




End of the Project Gutenberg EBook of Hamlet, by William Shakespeare

*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***

***** This file should be named 1524.txt or 1524.zip *****
Updated editions will replace the previous one--the old editions
will be renamed.
"""

OLD_1990S = (
    "The Project Gutenberg Etext of The Tempest, by William Shakespeare\r\n"
    "**Welcome To The World of Free Plain Vanilla Electronic Texts**\r\n"
    "\r\n"
    "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\r\n"
    "Why is this \"Small Print!\" statement here?  You know: lawyers.\r\n"
    "They tell us you might sue us if there is something wrong with\r\n"
    "your copy of this etext, even if you got it for free.\r\n"
    "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\r\n"
    "\r\n"
    "THE TEMPEST\r\n"
    "\r\n"
    "<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\r\n"
    "SHAKESPEARE IS COPYRIGHT 1990-1993 BY WORLD LIBRARY, INC., AND IS\r\n"
    "PROVIDED BY PROJECT GUTENBERG ETEXT OF ILLINOIS BENEDICTINE COLLEGE\r\n"
    "WITH PERMISSION.>>\r\n"
    "\r\n"
    "ACT I. SCENE I.\r\n"
    "On a ship at sea; a tempestuous noise of thunder and lightning heard.\r\n"
    "\r\n"
    "End of The Project Gutenberg Etext of The Tempest\r\n"
)


def test_modern_header_footer_and_credits_are_removed():
    assert strip_gutenberg(MODERN) == (
        "THE TRAGEDY OF HAMLET, PRINCE OF DENMARK\n\n"
        "Ber. Who's there?\n\n"
        "Fran. Nay, answer me. Stand and unfold yourself.")


def test_1990s_small_print_and_world_library_notice_are_removed():
    assert strip_gutenberg(OLD_1990S) == (
        "THE TEMPEST\n\n\n"
        "ACT I. SCENE I.\n"
        "On a ship at sea; a tempestuous noise of thunder and lightning heard.")


def test_the_variant_markers_without_spaces():
    text = ("header\n***START OF THE PROJECT GUTENBERG EBOOK 1342***\nIt is a truth.\n"
            "***END OF THE PROJECT GUTENBERG EBOOK 1342***\nlicense\n")
    assert strip_gutenberg(text) == "It is a truth."


def test_text_without_markers_is_left_alone():
    play = "THE TRAGEDY OF KING LEAR\n\nby William Shakespeare\n\nKent.\nI thought the King...\n"
    assert strip_gutenberg(play) == play.rstrip("\n")


def test_unclosed_license_block_keeps_the_text():
    text = "Act I.\n<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM\nEnter Lear.\n"
    assert strip_gutenberg(text) == text.rstrip("\n")
