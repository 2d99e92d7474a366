import pytest

from edge.privacy import InvalidPhone, mask_phone, normalise_phone


@pytest.mark.parametrize("raw", ["13812345678", "138 1234 5678", "+86 138-1234-5678"])
def test_phone_normalised(raw: str) -> None:
    assert normalise_phone(raw) == "13812345678"


@pytest.mark.parametrize("raw", ["", "1381234567", "23812345678", "138123456789", "abc"])
def test_bad_phone_refused(raw: str) -> None:
    with pytest.raises(InvalidPhone):
        normalise_phone(raw)


def test_mask() -> None:
    assert mask_phone("13812345678") == "138****5678"
