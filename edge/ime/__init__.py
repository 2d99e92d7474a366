"""Chinese text input for the touch screen: a pinyin dictionary and a handwriting recogniser.

Knows nothing of Flask or the kiosk: the kiosk's IME blueprint (edge/kiosk_ui/screens/ime.py)
serves these to the on-screen keyboard.
"""
from edge.ime.handwriting import HandwritingRecogniser, HandwritingUnavailable
from edge.ime.pinyin import Candidate, PinyinDictionary

__all__ = ["Candidate", "HandwritingRecogniser", "HandwritingUnavailable", "PinyinDictionary"]
