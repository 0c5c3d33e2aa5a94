"""The password policy for dashboard logins, one place for every way a password is set.

Used by `flask operator`, set_operator() (so no other path can store a weak one), and the
production start-up checks for OPERATOR_PASSWORD. The rules are NIST SP 800-63B's short
list: long enough, not a well-known password, not derived from the account's name. No
composition rules (digits, symbols): they make passwords harder to remember, not to guess.
"""

from __future__ import annotations

from flask_babel import gettext

MIN_LENGTH = 12

# The embedded default's first login: printed on every `python app.py`, so public.
DEMO_OPERATOR_PASSWORD = "scancharge-demo"

# A short list of the passwords tried first by anyone guessing (compiled from the published
# top lists, kept to those of MIN_LENGTH or more plus the shorter classics, which length
# alone refuses anyway). Compared case-insensitively and without surrounding spaces.
COMMON_PASSWORDS: frozenset[str] = frozenset({
    "123456789012", "1234567890123", "12345678901234", "123456123456", "111111111111",
    "000000000000", "123123123123", "112233445566", "121212121212", "987654321098",
    "1q2w3e4r5t6y", "1qaz2wsx3edc", "qwertyuiop12", "qwertyuiop123", "qwerty123456",
    "qwertyqwerty", "asdfghjkl123", "zxcvbnm12345", "qazwsxedcrfv", "1qazxsw23edc",
    "password1234", "password12345", "password123!", "passwordpassword", "password1!23",
    "mypassword123", "changeme1234", "changemenow!", "letmein12345", "letmeinplease",
    "welcome12345", "welcome123!!", "iloveyou1234", "trustno1trustno1", "administrator",
    "administrator1", "admin1234567", "adminadmin123", "adminpassword", "rootpassword",
    "superuser123", "supersecret1", "supersecret123", "secretpassword", "topsecret123",
    "verysecret123", "default12345", "defaultpassword", "guestguest12", "testtest1234",
    "test12345678", "testpassword", "demo12345678", "demopassword", "operator1234",
    "operatorpassword", "dashboard123", "scancharge123", "scancharge1234", "scanchargedemo",
    DEMO_OPERATOR_PASSWORD, "chargingstation", "evcharging123", "correcthorsebatterystaple",
    "baseball1234", "football1234", "basketball12", "sunshine1234", "princess1234",
    "starwars1234", "pokemon12345", "superman1234", "batman123456", "michael12345",
    "jennifer1234", "jordan232323", "monkey123456", "dragon123456", "shadow123456",
    "master123456", "whatever1234", "computer1234", "internet1234", "freedom12345",
    "qwerty12345678", "abcdefghijkl", "abcdef123456", "abc123abc123", "aaaaaaaaaaaa",
    "1234qwerasdf", "zaq12wsxcde3", "passw0rd1234", "p@ssw0rd1234", "p@ssword1234",
    "sommar2024!!", "sommar2025!!", "sommar2026!!", "summer2024!!", "summer2025!!",
    "winter2025!!", "vinter2025!!", "losenord1234", "lösenord1234", "hejhej123456",
    # The classics, shorter than MIN_LENGTH: refused for length, listed so the reason
    # given is the more useful one.
    "123456", "123456789", "12345678", "password", "qwerty", "111111", "123123", "abc123",
    "password1", "iloveyou", "admin", "letmein", "welcome", "monkey", "dragon",
})


class PasswordPolicyError(ValueError):
    """A password the policy refuses; the message lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def password_problems(password: str, email: str = "") -> list[str]:
    """Every reason this password may not be used for this e-mail; empty when it may."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(gettext("the password is %(length)s characters; use at least "
                                "%(least)s (a few unrelated words work well)",
                                length=len(password), least=MIN_LENGTH))
    folded = password.strip().casefold()
    if folded in COMMON_PASSWORDS:
        if folded == DEMO_OPERATOR_PASSWORD:
            problems.append(gettext("the password is the demo password, printed by every "
                                    "`python app.py`; choose your own"))
        else:
            problems.append(gettext("the password is on the list of the most common "
                                    "passwords; choose one nobody would guess first"))
    local_part = email.strip().casefold().partition("@")[0]
    # Very short local parts ("a@x.se") would refuse half the dictionary; 3+ is a name.
    if len(local_part) >= 3 and local_part in folded:
        problems.append(gettext("the password contains the e-mail's name (%(name)s); "
                                "choose one that does not", name=repr(local_part)))
    return problems


def check_password(password: str, email: str = "") -> None:
    """Raise PasswordPolicyError naming every problem, or return when the password may be used."""
    problems = password_problems(password, email)
    if problems:
        raise PasswordPolicyError(problems)
