"""Generate the labelled PII test set ``labelled.jsonl`` from templates and slot values.

Run from the repository root to rebuild it (deterministic, seeded)::

    .venv/bin/python tests/data/pii/generate.py

Each line is ``{"text", "spans": [{"start", "end", "label"}], "lang", "split"}``. Offsets are
computed while the sentence is assembled, so they are exact by construction. ``split`` is
``"tune"`` (templates and name lists that the rules were tuned on) or ``"heldout"`` (other
templates, other names, streets and towns, written separately and not used for tuning). Identifier
values are synthetic but valid (control digit, Luhn, mod-97, allocated phone ranges); hard negatives
(wrong control digit, impossible or future birth date, masked card, intersection, bare town, km
post, street or shop named after a person, amounts, dates) carry no span.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).with_name("labelled.jsonl")

Seg = tuple[str, str | None]  # (text, label or None)


# --------------------------------------------------------------------------------------------------
# Identifiers
# --------------------------------------------------------------------------------------------------

W1 = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
W2 = (3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2)


def control(first11: str) -> int | None:
    d = [int(c) for c in first11]
    for w in (W1, W2):
        c = sum(a * b for a, b in zip(d, w, strict=True)) % 11
        if c != 10:
            return c
    return None


def iin(r: random.Random) -> str:
    while True:
        year = r.randint(1945, 2008)
        month, day = r.randint(1, 12), r.randint(1, 28)
        century = (3 if year < 2000 else 5) + r.randint(0, 1)
        first = f"{year % 100:02d}{month:02d}{day:02d}{century}{r.randint(0, 9999):04d}"
        c = control(first)
        if c is not None:
            return first + str(c)


def bin_(r: random.Random) -> str:
    while True:
        first = (
            f"{r.randint(0, 24):02d}{r.randint(1, 12):02d}{r.choice('456')}{r.choice('0123')}{r.randint(0, 99999):05d}"
        )
        c = control(first)
        if c is not None:
            return first + str(c)


def bad_iin(r: random.Random) -> str:
    kind = r.randint(0, 2)
    if kind == 0:  # wrong control digit
        good = iin(r)
        return good[:11] + str((int(good[11]) + r.randint(1, 9)) % 10)
    if kind == 1:  # month 13
        first = f"{r.randint(60, 99):02d}13{r.randint(1, 28):02d}{r.choice('34')}{r.randint(0, 9999):04d}"
    else:  # born in the future (2030s with a 2000s century digit)
        yy, mm, dd = r.randint(30, 39), r.randint(1, 12), r.randint(1, 28)
        first = f"{yy:02d}{mm:02d}{dd:02d}{r.choice('56')}{r.randint(0, 9999):04d}"
    c = control(first)
    return first + str(c if c is not None else 0)


def luhn_complete(prefix15: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(prefix15)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return prefix15 + str((10 - total % 10) % 10)


def card_digits(r: random.Random) -> str:
    prefix = r.choice(["4400", "4405", "5169", "4149", "5522", "4578", "2200", "5375"])
    return luhn_complete(prefix + "".join(str(r.randint(0, 9)) for _ in range(11)))


def card(r: random.Random) -> str:
    d = card_digits(r)
    sep = r.choice([" ", " ", "", "-"])
    return sep.join(d[i : i + 4] for i in range(0, 16, 4))


def bad_card(r: random.Random) -> str:
    d = card_digits(r)
    if r.random() < 0.6:
        return f"{d[:4]} {d[4:6]}** **** {d[12:]}"
    wrong = d[:15] + str((int(d[15]) + 3) % 10)
    return " ".join(wrong[i : i + 4] for i in range(0, 16, 4))


def iban(r: random.Random, valid: bool = True) -> str:
    bank = r.choice(["125", "722", "601", "998", "914", "551", "826"])
    rest = "".join(r.choice("0123456789") for _ in range(4)) + r.choice(["KZT", "USD", "KZT"])
    rest += "".join(r.choice("0123456789") for _ in range(6))
    bban = bank + rest
    numeric = "".join(str(int(ch, 36)) for ch in bban + "KZ00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + r.randint(1, 50)) % 97 + 2
    value = f"KZ{check:02d}{bban}"
    if r.random() < 0.35:
        return " ".join(value[i : i + 4] for i in range(0, 20, 4))
    return value


MOBILE = ["700", "701", "702", "705", "707", "708", "747", "771", "775", "776", "777", "778"]
LANDLINE = [("727", 7), ("7172", 6), ("7252", 6), ("7212", 6), ("7132", 6), ("7182", 6), ("7122", 6)]


def phone(r: random.Random) -> str:
    if r.random() < 0.2:
        code, n = r.choice(LANDLINE)
        sub = str(r.randint(2, 3)) + "".join(str(r.randint(0, 9)) for _ in range(n - 1))
        if n == 7:
            return r.choice([f"8 ({code}) {sub[:3]}-{sub[3:5]}-{sub[5:]}", f"+7 {code} {sub[:3]} {sub[3:5]} {sub[5:]}"])
        return r.choice([f"8 ({code}) {sub[:2]}-{sub[2:4]}-{sub[4:]}", f"+7 {code} {sub[:2]}-{sub[2:4]}-{sub[4:]}"])
    p = r.choice(MOBILE)
    a = f"{r.randint(200, 999)}"
    b, c = f"{r.randint(0, 99):02d}", f"{r.randint(0, 99):02d}"
    return r.choice(
        [
            f"+7 {p} {a} {b} {c}",
            f"8 {p} {a} {b} {c}",
            f"8({p}){a}{b}{c}",
            f"+7({p}){a}-{b}-{c}",
            f"8{p}{a}{b}{c}",
            f"+7{p}{a}{b}{c}",
            f"8-{p}-{a}-{b}-{c}",
            f"8 ({p}) {a}-{b}-{c}",
            f"+7 ({p}) {a} {b} {c}",
            f"+7 {p} {a}{b}{c}",
        ]
    )


PLATE_LAT = "ABCDEHKMOPTXYZ"
PLATE_CYR = "АВЕКМНОРСТХУ"


def plate(r: random.Random) -> str:
    digits = f"{r.randint(1, 999):03d}"
    region = f"{r.randint(1, 20):02d}"
    letters_src = PLATE_CYR if r.random() < 0.2 else PLATE_LAT
    n = 2 if r.random() < 0.2 else 3
    letters = "".join(r.choice(letters_src) for _ in range(n))
    sep = r.choice([" ", " ", ""])
    return f"{digits}{sep}{letters}{sep}{region}"


def email(r: random.Random, first: str, last: str) -> str:
    user = r.choice([f"{first}.{last}", f"{first}{r.randint(1, 99)}", f"{last}_{first[0]}", f"{first[0]}{last}"])
    dom = r.choice(["mail.ru", "gmail.com", "mail.kz", "inbox.kz", "yandex.kz", "bk.ru", "outlook.com", "list.ru"])
    return f"{user.lower()}@{dom}"


# --------------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------------

# (given, sex) lists and surname stems; the held-out lists are disjoint from the tuned ones.
NAMES = {
    "tune": {
        "ru_m": ["Сергей", "Андрей", "Дмитрий", "Алексей", "Игорь", "Николай", "Павел", "Олег", "Виктор", "Максим"],
        "ru_f": ["Анна", "Ольга", "Елена", "Татьяна", "Наталья", "Ирина", "Светлана", "Марина", "Юлия", "Мария"],
        "kk_m": ["Нұрлан", "Ерлан", "Асқар", "Қайрат", "Бауыржан", "Ержан", "Дәурен", "Серік", "Марат", "Қанат"],
        "kk_f": ["Айгерім", "Гүлнар", "Әсел", "Жанар", "Динара", "Сәуле", "Айжан", "Мадина", "Назерке", "Ақерке"],
        "ru_sur": ["Иван", "Петр", "Кузнецов", "Смирн", "Попов", "Соколов", "Лебедев", "Волков", "Морозов", "Никитин"],
        "kk_sur": ["Ахмет", "Серікбаев", "Жұмабаев", "Тоқтаров", "Нұрланов", "Омар", "Сейітов", "Қасымов", "Әбенов"],
        "en_first": ["John", "Michael", "David", "Sarah", "Emily", "James", "Anna", "Robert", "Laura", "Peter"],
        "en_last": ["Smith", "Johnson", "Brown", "Taylor", "Wilson", "Miller", "Davis", "Clark", "Walker", "Wright"],
        "lat_kk": [("Aigerim", "f"), ("Nurlan", "m"), ("Yerlan", "m"), ("Asel", "f"), ("Askar", "m"), ("Dana", "f")],
        "lat_sur": ["Akhmetov", "Serikbayev", "Nurlanov", "Omarov", "Kassymov", "Zhumabayev"],
    },
    "heldout": {
        "ru_m": ["Владимир", "Евгений", "Роман", "Константин", "Артём", "Денис", "Григорий", "Станислав"],
        "ru_f": ["Екатерина", "Людмила", "Оксана", "Валентина", "Кристина", "Галина", "Вероника", "Алёна"],
        "kk_m": ["Талғат", "Жандос", "Бекзат", "Олжас", "Ғалым", "Мұрат", "Айбек", "Дастан", "Ербол", "Самат"],
        "kk_f": ["Гүлмира", "Жадыра", "Салтанат", "Меруерт", "Аружан", "Ботагөз", "Жансая", "Томирис", "Ұлжан"],
        "ru_sur": ["Фёдоров", "Орлов", "Захаров", "Белов", "Тарасов", "Белоусов", "Григорьев", "Карпов"],
        "kk_sur": ["Тлеуов", "Жақыпов", "Сәрсенбаев", "Мұқанов", "Байжанов", "Есенов", "Қуанышев", "Бекмұхамбетов"],
        "en_first": ["William", "Thomas", "Jennifer", "Daniel", "Jessica", "Kevin", "Olivia", "George"],
        "en_last": ["Anderson", "Harris", "Martin", "Robinson", "Lewis", "Young", "King", "Scott"],
        "lat_kk": [
            ("Zhanar", "f"),
            ("Daulet", "m"),
            ("Madina", "f"),
            ("Olzhas", "m"),
            ("Saltanat", "f"),
            ("Timur", "m"),
        ],
        "lat_sur": ["Tleuov", "Mukanov", "Bekov", "Sarsenbayev", "Baizhanov", "Yessenov"],
    },
}

FRONT = set("әеіөүиэ")
BACK = set("аоұыуяюё")
VOICELESS = set("кқпстфхцчшщ")


def harmony_front(word: str) -> bool:
    for ch in reversed(word.lower()):
        if ch in FRONT:
            return True
        if ch in BACK:
            return False
    return False


def kk_case(word: str, case: str) -> str:
    last = word[-1].lower()
    front = harmony_front(word)
    vowel = last in FRONT | BACK
    if word.lower().endswith(("ұлы", "улы", "қызы", "кызы")):
        return word + {"dat": "на", "gen": "ның", "acc": "н", "ins": "мен", "abl": "нан"}[case]
    if case == "dat":
        suf = ("ке" if front else "қа") if last in VOICELESS or last == "в" else ("ге" if front else "ға")
    elif case == "gen":
        if vowel or last in "мнң":
            suf = "нің" if front else "ның"
        elif last in VOICELESS or last == "в":
            suf = "тің" if front else "тың"
        else:
            suf = "дің" if front else "дың"
    elif case == "acc":
        if vowel:
            suf = "ні" if front else "ны"
        elif last in VOICELESS or last == "в":
            suf = "ті" if front else "ты"
        else:
            suf = "ді" if front else "ды"
    elif case == "ins":
        suf = "пен" if last in VOICELESS else "бен" if last in "мнңзж" else "мен"
    else:  # abl
        suf = (
            ("тен" if front else "тан")
            if last in VOICELESS
            else ("нен" if front else "нан")
            if last in "мнң"
            else ("ден" if front else "дан")
        )
    return word + suf


def ru_given(name: str, sex: str, case: str) -> str:
    if case == "nom":
        return name
    if sex == "m":
        if name.endswith(("й", "ь")):
            stem = name[:-1]
            return stem + {"gen": "я", "dat": "ю", "acc": "я", "ins": "ем"}[case]
        stem = {"Павел": "Павл", "Пётр": "Петр"}.get(name, name)
        return stem + {"gen": "а", "dat": "у", "acc": "а", "ins": "ом"}[case]
    if name.endswith("ия"):
        return name[:-1] + {"gen": "и", "dat": "и", "acc": "ю", "ins": "ей"}[case]
    if name.endswith("а"):
        gen = "и" if name[-2] in "гкхжшчщ" else "ы"
        return name[:-1] + {"gen": gen, "dat": "е", "acc": "у", "ins": "ой"}[case]
    if name.endswith("я"):
        return name[:-1] + {"gen": "и", "dat": "е", "acc": "ю", "ins": "ей"}[case]
    return name  # Айгерим, Асель: left as is


def surname(stem: str, sex: str) -> str:
    base = stem if stem.endswith(("ов", "ев", "ин")) else stem + ("ов" if stem[-1] not in "йжшчщц" else "ев")
    return base + ("а" if sex == "f" else "")


def ru_surname_case(sur: str, sex: str, case: str) -> str:
    if case == "nom":
        return sur
    if sex == "m":
        return sur + {"gen": "а", "dat": "у", "acc": "а", "ins": "ым"}[case]
    return sur[:-1] + {"gen": "ой", "dat": "ой", "acc": "у", "ins": "ой"}[case]


def patronymic(father: str, sex: str, case: str) -> str:
    base = father.translate(str.maketrans("әғқңөұүһі", "агкноуухи"))
    stem = base[:-1] + "ев" if base.endswith("й") else base + "ов"
    if sex == "m":
        return stem + "ич" + {"nom": "", "gen": "а", "dat": "у", "acc": "а", "ins": "ем"}[case]
    return stem + "на" if case == "nom" else stem + "н" + {"gen": "ы", "dat": "е", "acc": "у", "ins": "ой"}[case]


class Ctx:
    def __init__(self, r: random.Random, split: str) -> None:
        self.r = r
        self.split = split
        self.n = NAMES[split]

    def ru_person(self, case: str = "nom") -> list[Seg]:
        r = self.r
        sex = r.choice("mf")
        pool = self.n["ru_m" if sex == "m" else "ru_f"]
        if r.random() < 0.3:
            pool = [ru(n) for n in self.n["kk_m" if sex == "m" else "kk_f"]]
        given = r.choice(pool)
        stem = r.choice(self.n["ru_sur"] + [ru(s) for s in self.n["kk_sur"]])
        sur = ru_surname_case(surname(stem, sex), sex, case)
        g = ru_given(given, sex, case)
        ini = r.choice("АБВГДЕЖЗИКЛМНОПРСТ")
        ini2 = r.choice("АБВГДЕИКМНОПРСТ")
        form = r.randint(0, 7)
        if form == 0:
            text = f"{sur} {ini}."
        elif form == 1:
            text = f"{ini}. {sur}"
        elif form == 2:
            text = f"{sur} {ini}.{ini2}."
        elif form == 3:
            father = r.choice(self.n["ru_m"] + [ru(n) for n in self.n["kk_m"]])
            text = f"{sur} {g} {patronymic(father, sex, case)}"
        elif form == 4:
            text = f"{g} {sur}"
        elif form == 5:
            text = f"{sur} {g}"
        elif form == 6:
            text = g
        else:
            text = sur
        return [(text, "PERSON")]

    def kk_person(self, case: str = "nom") -> list[Seg]:
        r = self.r
        sex = r.choice("mf")
        given = r.choice(self.n["kk_m" if sex == "m" else "kk_f"])
        father = r.choice(self.n["kk_m"])
        form = r.randint(0, 5)
        if form == 0:
            parts = [given, father + ("ұлы" if sex == "m" else "қызы")]
        elif form == 1:
            parts = [father + ("ұлы" if sex == "m" else "қызы"), given]
        elif form == 2:
            parts = [surname(r.choice(self.n["kk_sur"]), sex), given]
        elif form == 3:
            parts = [given, surname(r.choice(self.n["kk_sur"]), sex)]
        elif form == 4:
            parts = [given]
        else:
            parts = [surname(r.choice(self.n["kk_sur"]), sex), r.choice("АБЕҚМНСТ") + "."]
        if case != "nom" and not parts[-1].endswith("."):
            parts[-1] = kk_case(parts[-1], case)
        return [(" ".join(parts), "PERSON")]

    def en_person(self) -> list[Seg]:
        r = self.r
        form = r.randint(0, 5)
        if form <= 1:
            return [(f"{r.choice(self.n['en_first'])} {r.choice(self.n['en_last'])}", "PERSON")]
        if form == 2:
            first, sex = r.choice(self.n["lat_kk"])
            sur = r.choice(self.n["lat_sur"]) + ("a" if sex == "f" else "")
            return [(f"{first} {sur}", "PERSON")]
        if form == 3:
            title = r.choice(["Mr. ", "Mrs. ", "Ms. ", "Officer ", "Dr. "])
            return [(title, None), (r.choice(self.n["en_last"] + self.n["lat_sur"]), "PERSON")]
        if form == 4:
            first, _ = r.choice(self.n["lat_kk"])
            return [(first, "PERSON")]
        return [(f"{r.choice(self.n['lat_sur'])} {r.choice('ABDEKMNST')}.", "PERSON")]


def ru(word: str) -> str:
    return word.translate(str.maketrans("әғқңөұүһі", "агкноуухи"))


# --------------------------------------------------------------------------------------------------
# Addresses
# --------------------------------------------------------------------------------------------------

STREETS = {
    "tune": {
        "ru": [
            "Абая",
            "Толе би",
            "Жамбыла",
            "Сатпаева",
            "Байтурсынова",
            "Гоголя",
            "Пушкина",
            "Кабанбай батыра",
            "Назарбаева",
            "Достык",
            "Жибек Жолы",
            "Розыбакиева",
            "Ауэзова",
            "Манаса",
            "Тимирязева",
            "Желтоксан",
        ],
        "kk": [
            "Абай",
            "Төле би",
            "Жамбыл",
            "Сәтбаев",
            "Байтұрсынұлы",
            "Қабанбай батыр",
            "Достық",
            "Желтоқсан",
            "Әуезов",
            "Бауыржан Момышұлы",
            "Тұран",
            "Кенесары",
        ],
        "en": ["Abay", "Dostyk", "Tole Bi", "Kabanbay Batyr", "Al-Farabi", "Satpayev", "Zhibek Zholy", "Turan"],
        "mkr": ["Самал-2", "Аксай-4", "Орбита-3", "Жетысу-2", "Коктем-1", "5", "12"],
        "cities_ru": ["Алматы", "Астана", "Шымкент", "Караганда", "Павлодар", "Актобе"],
        "cities_kk": ["Алматы", "Астана", "Шымкент", "Қарағанды", "Ақтөбе", "Атырау"],
        "cities_en": ["Almaty", "Astana", "Shymkent", "Karaganda", "Aktobe"],
    },
    "heldout": {
        "ru": [
            "Фурманова",
            "Сейфуллина",
            "Курмангазы",
            "Богенбай батыра",
            "Тулебаева",
            "Кунаева",
            "Макатаева",
            "Наурызбай батыра",
            "Панфилова",
            "Гагарина",
            "Ленина",
            "Мира",
        ],
        "kk": [
            "Сейфуллин",
            "Құрманғазы",
            "Бөгенбай батыр",
            "Наурызбай батыр",
            "Қонаев",
            "Республика",
            "Бейбітшілік",
            "Әл-Фараби",
            "Шоқан Уәлиханов",
            "Сарыарқа",
        ],
        "en": ["Seifullin", "Kurmangazy", "Bogenbay Batyr", "Respublika", "Kunayev", "Mangilik El"],
        "mkr": ["Алмагуль", "Тастак-1", "Мамыр-4", "Кулагер", "7", "3"],
        "cities_ru": ["Тараз", "Костанай", "Уральск", "Кокшетау", "Семей", "Туркестан", "Экибастуз"],
        "cities_kk": ["Тараз", "Қостанай", "Орал", "Көкшетау", "Семей", "Түркістан", "Өскемен"],
        "cities_en": ["Taraz", "Kostanay", "Oral", "Kokshetau", "Semey", "Turkistan"],
    },
}


def house_no(r: random.Random) -> str:
    n = str(r.randint(1, 250))
    x = r.random()
    if x < 0.12:
        n += r.choice("АБВ")
    elif x < 0.2:
        n += f"/{r.randint(1, 9)}"
    return n


def addr_ru(c: Ctx) -> str:
    r = c.r
    s = STREETS[c.split]
    street = r.choice(s["ru"])
    city = r.choice(s["cities_ru"])
    kw = r.choice(["ул. ", "ул. ", "улица ", "пр. ", "проспект ", "ул."])
    h, flat = house_no(r), str(r.randint(1, 300))
    form = r.randint(0, 8)
    if form == 0:
        return f"{kw}{street} {h}, кв. {flat}"
    if form == 1:
        return f"г. {city}, {kw}{street} {h}, кв. {flat}"
    if form == 2:
        return f"{kw}{street}, д. {h}"
    if form == 3:
        return f"{kw}{street}, дом {h}, квартира {flat}"
    if form == 4:
        return f"мкр. {r.choice(s['mkr'])}, д. {h}, кв. {flat}"
    if form == 5:
        return f"{kw}{street} {h}, г. {city}"
    if form == 6:
        return f"{r.randint(10, 16) * 10000:06d}, г. {city}, {kw}{street}, {h}"
    if form == 7:
        return f"город {city}, {kw}{street} {h}"
    return f"{kw}{street} {h}, офис {r.randint(1, 500)}"


def addr_kk(c: Ctx) -> str:
    r = c.r
    s = STREETS[c.split]
    street = r.choice(s["kk"])
    city = r.choice(s["cities_kk"])
    kind = r.choice(["көшесі", "көшесі", "даңғылы"])
    h, flat = house_no(r), str(r.randint(1, 300))
    form = r.randint(0, 7)
    if form == 0:
        return f"{city} қаласы, {street} {kind}, {h} үй, {flat} пәтер"
    if form == 1:
        return f"{street} {kind} {h}, {flat} пәтер"
    if form == 2:
        return f"{city} қ., {street} {kind}, {h}-үй"
    if form == 3:
        return f"{street} {kind}, {h} үй"
    if form == 4:
        return f"{r.choice(s['mkr'])} шағын ауданы, {h} үй, {flat} пәтер"
    if form == 5:
        return f"{street} {kind} {h}, {city} қаласы"
    if form == 6:
        return f"{city}, {street} {kind} {h}"
    return f"{street} {kind}, {h}-үй, {flat}-пәтер"


def addr_en(c: Ctx) -> str:
    r = c.r
    s = STREETS[c.split]
    street = r.choice(s["en"])
    city = r.choice(s["cities_en"])
    kind = r.choice(["Avenue", "Street", "Ave.", "St.", "street"])
    h, flat = house_no(r), str(r.randint(1, 300))
    form = r.randint(0, 5)
    if form == 0:
        return f"{h} {street} {kind}, apt. {flat}, {city}"
    if form == 1:
        return f"{street} {kind} {h}, {city}"
    if form == 2:
        return f"{city}, {street} {kind} {h}, apt {flat}"
    if form == 3:
        return f"{h} {street} {kind}"
    if form == 4:
        return f"{street} {kind} {h}, office {r.randint(1, 500)}"
    return f"{street} {kind}, building {h}, {city}"


# --------------------------------------------------------------------------------------------------
# Hard negatives
# --------------------------------------------------------------------------------------------------


def neg_place_ru(c: Ctx) -> str:
    r = c.r
    s = STREETS[c.split]
    a, b = r.sample(s["ru"], 2)
    return r.choice(
        [
            f"на пересечении ул. {a} и ул. {b}",
            f"на углу {a} и {b}",
            f"в г. {r.choice(s['cities_ru'])}",
            f"на {r.randint(5, 90)} км трассы Алматы – Бишкек",
            f"на улице {a}",
            f"возле магазина «{r.choice(c.n['ru_f'])}»",
            f"в кафе «{r.choice(c.n['kk_m'])}»",
            f"по проспекту {a}",
        ]
    )


def neg_place_kk(c: Ctx) -> str:
    r = c.r
    s = STREETS[c.split]
    a, b = r.sample(s["kk"], 2)
    return r.choice(
        [
            f"{a} және {b} көшелерінің қиылысында",
            f"{r.choice(s['cities_kk'])} қаласында",
            f"{a} көшесінде",
            f"«{r.choice(c.n['kk_f'])}» дүкенінің жанында",
            f"Алматы – Қапшағай тас жолының {r.randint(5, 60)} шақырымында",
            f"{a} даңғылы бойында",
        ]
    )


def neg_place_en(c: Ctx) -> str:
    r = c.r
    s = STREETS[c.split]
    a, b = r.sample(s["en"], 2)
    return r.choice(
        [
            f"at the intersection of {a} and {b}",
            f"in {r.choice(s['cities_en'])}",
            f"on {a} Avenue",
            f"near the {r.choice(c.n['en_first'])}'s Bakery shop",
            f"at km {r.randint(5, 90)} of the Almaty-Bishkek highway",
        ]
    )


def neg_number(c: Ctx) -> str:
    r = c.r
    return r.choice(
        [
            f"{r.randint(1, 9)} {r.randint(100, 999)} 000 тенге",
            f"{r.randint(1, 28):02d}.{r.randint(1, 12):02d}.2024",
            f"в {r.randint(0, 23):02d}:{r.randint(0, 59):02d}",
            f"№ {r.randint(10000, 99999)}",
            f"{r.randint(2, 12)} {r.choice(['раз', 'человек', 'минут'])}",
        ]
    )


# --------------------------------------------------------------------------------------------------
# Templates
# --------------------------------------------------------------------------------------------------

Slot = Callable[[Ctx], list[Seg]]


def lab(label: str, fn: Callable[[Ctx], str]) -> Slot:
    return lambda c: [(fn(c), label)]


def neg(fn: Callable[[Ctx], str]) -> Slot:
    return lambda c: [(fn(c), None)]


def _email(c: Ctx) -> str:
    r = c.r
    first, _ = r.choice(c.n["lat_kk"])
    return email(r, first, r.choice(c.n["lat_sur"] + c.n["en_last"]))


SLOTS: dict[str, Slot] = {
    "IIN": lab("IIN", lambda c: iin(c.r) if c.r.random() < 0.85 else (lambda v: f"{v[:6]} {v[6:]}")(iin(c.r))),
    "BIN": lab("BIN", lambda c: bin_(c.r)),
    "PHONE": lab("PHONE", lambda c: phone(c.r)),
    "EMAIL": lab("EMAIL", _email),
    "CARD": lab("CARD", lambda c: card(c.r)),
    "IBAN": lab("IBAN", lambda c: iban(c.r)),
    "PLATE": lab("PLATE", lambda c: plate(c.r)),
    "ADDR_RU": lab("ADDRESS", addr_ru),
    "ADDR_KK": lab("ADDRESS", addr_kk),
    "ADDR_EN": lab("ADDRESS", addr_en),
    "P_RU": lambda c: c.ru_person("nom"),
    "P_RU_GEN": lambda c: c.ru_person("gen"),
    "P_RU_DAT": lambda c: c.ru_person("dat"),
    "P_RU_INS": lambda c: c.ru_person("ins"),
    "P_KK": lambda c: c.kk_person("nom"),
    "P_KK_DAT": lambda c: c.kk_person("dat"),
    "P_KK_GEN": lambda c: c.kk_person("gen"),
    "P_KK_ACC": lambda c: c.kk_person("acc"),
    "P_EN": lambda c: c.en_person(),
    "NEG_IIN": neg(lambda c: bad_iin(c.r)),
    "NEG_CARD": neg(lambda c: bad_card(c.r)),
    "NEG_IBAN": neg(lambda c: iban(c.r, valid=False)),
    "NEG_PLACE_RU": neg(neg_place_ru),
    "NEG_PLACE_KK": neg(neg_place_kk),
    "NEG_PLACE_EN": neg(neg_place_en),
    "NEG_NUM": neg(neg_number),
}

TEMPLATES = {
    "tune": {
        "ru": [
            "Сосед с {ADDR_RU} ({P_RU}) шумит ночью, его номер {PHONE}.",
            "Прошу принять меры: {P_RU} постоянно паркует автомобиль {PLATE} на газоне у дома.",
            "Водитель машины {PLATE} нагрубил мне {NEG_PLACE_RU}, его зовут {P_RU}.",
            "Мой ИИН {IIN}, телефон для связи {PHONE}, e-mail {EMAIL}.",
            "В подъезде по адресу {ADDR_RU} собирается шумная компания, звонил участковому {P_RU_DAT}.",
            "ТОО с БИН {BIN} не выплачивает зарплату, директор {P_RU}.",
            "Мошенники списали деньги с карты {CARD}, перевели на счёт {IBAN}.",
            "Продавец {P_RU} требует ИИН при покупке хлеба, это законно?",
            "Жалоба на {P_RU_GEN}: он выбросил мусор {NEG_PLACE_RU}.",
            "Я, {P_RU}, проживаю по адресу {ADDR_RU}, прошу разобраться.",
            "{NEG_PLACE_RU} произошла драка, участвовал {P_RU}, тел. {PHONE}",
            "Номер карты {NEG_CARD} указан в объявлении, звоните {PHONE}.",
            "ИИН {NEG_IIN} не проходит проверку, а у {P_RU_GEN} правильный {IIN}.",
            "Передал документы {P_RU_DAT} {NEG_NUM}, ответа нет.",
            "Автомобиль {PLATE} стоит во дворе дома по адресу {ADDR_RU} уже {NEG_NUM}.",
            "Пишите на {EMAIL} или звоните {PHONE}, спросить {P_RU_GEN}.",
            "Инспектор {P_RU} выписал штраф на {NEG_NUM} без протокола.",
            "Соседка {P_RU} ({PHONE}) затопила квартиру по адресу {ADDR_RU}.",
            "Счёт получателя {IBAN}, БИН {BIN}, назначение платежа: аренда.",
            "Встретился с {P_RU_INS} {NEG_PLACE_RU}, он угрожал мне.",
            "Неверный счёт {NEG_IBAN} прислали из банка {NEG_NUM}.",
        ],
        "kk": [
            "Көлік нөмірі {PLATE}, жүргізуші {P_KK} жол ережесін бұзды.",
            "Көршім {P_KK} түнде шу шығарады, мекенжайы: {ADDR_KK}.",
            "Менің ЖСН {IIN}, байланыс телефоны {PHONE}.",
            "{P_KK_DAT} хабарласыңыз: {PHONE}, электрондық пошта {EMAIL}.",
            "{NEG_PLACE_KK} төбелес болды, қатысушы {P_KK}.",
            "Дүкен сатушысы {P_KK} ЖСН сұрады, бұл заңсыз емес пе?",
            "{ADDR_KK} мекенжайында тұратын {P_KK} ит ұстайды, ит адамдарға шабады.",
            "Карта нөмірі {CARD} бойынша ақша ұрланды, шот {IBAN}.",
            "БСН {BIN} серіктестігі жалақы төлемейді, директоры {P_KK}.",
            "{P_KK_GEN} көлігі {PLATE} {NEG_PLACE_KK} тұр.",
            "Учаскелік {P_KK} {NEG_NUM} келмеді.",
            "ЖСН {NEG_IIN} дұрыс емес, ал {P_KK_GEN} ЖСН {IIN}.",
            "Хабарламаны {P_KK_ACC} {ADDR_KK} мекенжайынан көрдім.",
            "Жалған карта {NEG_CARD} туралы {PHONE} нөміріне хабарласыңыз.",
            "Мен {P_KK}, {ADDR_KK} мекенжайында тұрамын, телефоным {PHONE}.",
            "{NEG_PLACE_KK} жүргізуші {PLATE} көлігімен жаяу жүргіншіні қағып кетті.",
            "{P_KK} {NEG_NUM} ақша алып, қайтармады, шоты {IBAN}.",
            "Поштаға жазыңыз: {EMAIL}, {P_KK} жауап береді.",
            "Көршіміз {P_KK_DAT} айтсақ та, ол {NEG_PLACE_KK} қоқыс тастай береді.",
            "Ұйымның БСН {BIN}, шоты {NEG_IBAN} қате көрінеді.",
        ],
        "en": [
            "My neighbour {P_EN} at {ADDR_EN} plays loud music every night, call me at {PHONE}.",
            "The driver of car {PLATE} was rude to me {NEG_PLACE_EN}.",
            "Please contact {P_EN} by email {EMAIL} or phone {PHONE}.",
            "Someone used my card {CARD} and sent the money to {IBAN}.",
            "{P_EN} lives at {ADDR_EN} and keeps an aggressive dog.",
            "My IIN is {IIN} and the company BIN is {BIN}.",
            "A fight broke out {NEG_PLACE_EN}; {P_EN} was involved.",
            "The ad shows card {NEG_CARD}, and the number {NEG_IIN} is not a valid IIN.",
            "I reported it to {P_EN} {NEG_NUM} but nothing happened.",
            "Car {PLATE} has been parked at {ADDR_EN} for weeks.",
        ],
    },
    "heldout": {
        "ru": [
            "Здравствуйте! {P_RU} из квартиры напротив ({ADDR_RU}) курит в подъезде, прошу принять меры.",
            "Такси {PLATE}, водитель {P_RU}, обсчитал пассажира {NEG_PLACE_RU}. Мой номер: {PHONE}",
            "Заявитель: {P_RU}, ИИН {IIN}, адрес: {ADDR_RU}.",
            "Сообщаю, что {P_RU} продаёт алкоголь несовершеннолетним {NEG_PLACE_RU}.",
            "Перевёл {NEG_NUM} на карту {CARD}, получатель {P_RU} пропал.",
            "Компания (БИН {BIN}) требует у клиентов ИИН и номер телефона.",
            "Связаться со мной можно по почте {EMAIL}; обидчик — {P_RU}.",
            "Участковый {P_RU} не реагирует на звонки по номеру {PHONE}.",
            "{NEG_PLACE_RU} стоит брошенный автомобиль {PLATE}.",
            "Номер {NEG_IIN} в договоре не является ИИН, проверьте.",
            "Реквизиты для возврата: {IBAN}, получатель {P_RU}.",
        ],
        "kk": [
            "Сәлеметсіз бе! {P_KK} {ADDR_KK} мекенжайында заңсыз құрылыс салып жатыр.",
            "{PLATE} мемлекеттік нөмірлі көлік {NEG_PLACE_KK} тұрақ ережесін бұзды.",
            "Өтініш беруші: {P_KK}, ЖСН {IIN}, тел.: {PHONE}.",
            "{P_KK_GEN} телефоны {PHONE}, ол маған қоқан-лоқы көрсетті.",
            "Ақшаны {CARD} картасына аудардым, бірақ {P_KK} жауап бермейді.",
            "Серіктестік (БСН {BIN}) клиенттерден ЖСН талап етеді.",
            "Менің поштам: {EMAIL}. Мекенжайым: {ADDR_KK}.",
            "Қате нөмір {NEG_IIN} құжатта көрсетілген.",
            "{NEG_PLACE_KK} {P_KK} деген адам балаларды қорқытады.",
            "Қайтару үшін шот: {IBAN}, алушы {P_KK}.",
            "Жүргізуші {P_KK_DAT} {NEG_NUM} айыппұл салынды.",
        ],
        "en": [
            "Hello, {P_EN} from {ADDR_EN} is running an illegal business.",
            "Vehicle {PLATE} blocked the exit {NEG_PLACE_EN}; the owner is {P_EN}.",
            "Applicant: {P_EN}, IIN {IIN}, phone {PHONE}, email {EMAIL}.",
            "Refund to {IBAN}, card {CARD}, please.",
            "{P_EN} threatened my son {NEG_PLACE_EN}.",
            "The number {NEG_IIN} on the form is not an IIN.",
        ],
    },
}


# --------------------------------------------------------------------------------------------------
# Hand-written sentences (held out): written and annotated before the rules were run on them.
# ``[[text|LABEL]]`` marks a span; ``NONE`` marks a hard negative (kept in the text, no span).
# --------------------------------------------------------------------------------------------------

HAND = """
ru|Вчера около 23:00 сосед из кв. 45 [[Жаксылыков Арман|PERSON]] снова устроил драку во дворе.
ru|Прошу наказать водителя автомобиля [[505 ADK 02|PLATE]], он сбил собаку и уехал.
ru|Мой номер [[+7 (705) 455-12-90|PHONE]], перезвоните, пожалуйста.
ru|Гражданка [[Сулейменова Динара Маратовна|PERSON]] (ИИН [[880512450216|IIN]]) торгует без лицензии.
ru|Адрес происшествия: [[г. Караганда, ул. Ерубаева, д. 35, кв. 12|ADDRESS]].
ru|В магазине «Арман» продавец отказался дать чек.
ru|[[Петренко В.А.|PERSON]] угрожал мне по телефону [[8 777 301 22 10|PHONE]].
ru|Участковый [[Омаров|PERSON]] не приехал на вызов, хотя я звонила трижды.
ru|На улице Гоголя опять не горят фонари, дети боятся ходить.
ru|Деньги ушли на карту [[5169 4931 0456 7782|CARD]], владелец карты — [[Алина К.|PERSON]]
ru|Верните деньги на счёт [[KZ22 9260 0012 3456 7890|IBAN]], получатель ТОО «Береке».
ru|Соседи из дома [[ул. Жансугурова 112|ADDRESS]] жгут мусор во дворе.
ru|Хулиганы сломали остановку на пересечении Абая и Розыбакиева.
ru|Прошу связаться со мной по email [[dinara.s@mail.ru|EMAIL]].
ru|Такси с номером [[318 BTA 17|PLATE]] возит пассажиров без лицензии, водитель [[Рустам|PERSON]].
ru|Моя соседка [[Галина Петровна|PERSON]] жалуется, что [[Кузьмин|PERSON]] паркуется на газоне.
ru|ДТП на 12 км трассы Астана — Караганда, есть пострадавшие.
ru|Живу по адресу [[мкр. Аксай-3А, д. 21, кв. 67|ADDRESS]], в подъезде постоянно курят.
ru|Передайте [[Ерлану Сапарову|PERSON]], что его машина мешает проезду.
ru|Сотрудник ЦОНа [[Абенова|PERSON]] требовала ИИН и адрес у пенсионера.
ru|Ребёнок потерялся в ТРЦ «Mega», мать [[Жанна Ибраева|PERSON]], тел. [[87075553311|PHONE]]
ru|Кафе «Алия» на Сатпаева работает после 23:00 с громкой музыкой.
ru|Вызовите полицию на [[ул. Майлина 77/1|ADDRESS]], там дерутся.
ru|Фирма с БИН [[070540012340|BIN]] собирает паспортные данные без согласия.
ru|Карта [[4400 43** **** 9921|NONE]] была заблокирована банком.
ru|Заявитель: [[Ким Виктор Александрович|PERSON]], проживающий: [[г. Талдыкорган, ул. Тауелсиздик, 58|ADDRESS]].
ru|Номер [[880512450217|NONE]] не подходит как ИИН, банк отказал.
ru|Пьяный водитель [[Мамедов|PERSON]] на машине [[120 АВС 05|PLATE]] ехал по встречке.
ru|В Шымкенте на рынке продают поддельные лекарства.
ru|Тренер [[Дмитрий Сергеевич|PERSON]] оскорблял детей, его почта [[d.trener@inbox.kz|EMAIL]].
ru|Прошу проверить ИП, он звонит с номера [[+77471112233|PHONE]] и угрожает.
ru|Сосед [[Бекжан|PERSON]] из [[дома 7 на ул. Набережной|ADDRESS]] держит бойцовских собак.
ru|Дворник [[Айдос|PERSON]] сказал, что мусор вывезут в понедельник.
ru|Избили [[Нурлана|PERSON]] возле школы № 54, виновник [[Тимур Ахметжанов|PERSON]].
ru|Заберите брошенную машину у [[дома 14 по ул. Шевченко|ADDRESS]].
ru|Моего сына обидел учитель [[Болатов Е.К.|PERSON]]
kk|Кеше кешке көршім [[Жанат Әбілов|PERSON]] үйдің алдында төбелес шығарды.
kk|[[777 KZA 01|PLATE]] нөмірлі көлік тротуарға тұрып алды.
kk|Менің телефоным: [[8 701 555 44 33|PHONE]].
kk|[[Астана қ., Сығанақ көшесі, 14 үй, 56 пәтер|ADDRESS]] мекенжайында шулы той болып жатыр.
kk|Дәрігер [[Мұратова Гүлжан|PERSON]] науқастарға дөрекі сөйлейді.
kk|Абай даңғылы мен Достық даңғылының қиылысында жол апаты болды.
kk|[[Ерболға|PERSON]] айтыңыз, көлігін жолдан алсын.
kk|Ақшаны [[4405 6391 2278 1154|CARD]] картасына аудардым, бірақ тауар келмеді.
kk|Шот нөмірі [[KZ21 8560 0000 0987 6543|IBAN]], алушы «Жұлдыз» ЖШС.
kk|[[Сәуле Қайратқызы|PERSON]] балаларды ұрады деген хабар бар.
kk|Электрондық поштам: [[aliya_87@mail.kz|EMAIL]]
kk|Шымкент қаласындағы базарда жалған дәрі сатылады.
kk|[[Қарағанды қаласы, Бұқар жырау даңғылы, 47-үй|ADDRESS]] маңында ит жүр.
kk|Учаскелік инспектор [[Серікбаев Д.|PERSON]] шақыруға келмеді.
kk|Жүргізуші [[Оспанов Айдар Серікұлы|PERSON]] мас күйінде көлік жүргізді.
kk|Ұйымның БСН [[050340004567|BIN]], бірақ олар келісімсіз деректер жинайды.
kk|Көршілер [[Мамыр-4 шағын ауданы, 12 үй|ADDRESS]] тұрғындары түнде шулайды.
kk|Менің ұлым [[Арманды|PERSON]] мектепте ұрып-соққан.
kk|«Айгерім» дүкенінде кәмелетке толмағандарға темекі сатады.
kk|Жол полициясының қызметкері [[Нұрболат|PERSON]] пара сұрады.
kk|[[Ахметова Ә.|PERSON]] телефоны [[+7 778 901 23 45|PHONE]].
kk|Маған [[87029998877|PHONE]] нөмірінен алаяқтар қоңырау шалды.
kk|Алматы – Қапшағай тас жолының 30-шақырымында көлік аударылды.
kk|Қате ЖСН [[960230500349|NONE]] құжатқа жазылған.
kk|Жүргізуші [[Дәулеттің|PERSON]] көлігі [[031 AAB 13|PLATE]] аулада тұр.
kk|[[Тараз қ., Төле би көшесі 62, 3 пәтер|ADDRESS]] – осы жерде заңсыз кафе бар.
kk|Көршім [[Гүлнәр|PERSON]] апай мен [[Асқар Тоқтаров|PERSON]] арасында жанжал болды.
kk|Мұғалім [[Әсем Болатқызы|PERSON]] оқушылардан ақша жинайды.
kk|Полицейлер Абай көшесінде рейд өткізді.
kk|[[Өскемен қаласы, Қазақстан көшесі, 70 үй|ADDRESS]] ауласында қоқыс жиналып қалды.
kk|Шағым иесі: [[Бекмұхамбетов Талғат|PERSON]], тел.: [[8 (7172) 57-33-21|PHONE]].
kk|[[Нұрлан Серікұлына|PERSON]] хабарлаңыз, ол куә болды.
kk|Көлік нөмірі [[909ABZ16|PLATE]], жүргізуші қашып кетті.
kk|Сатушы [[Айнұр|PERSON]] ЖСН-ді талап етті, бұл заңсыз.
kk|Қаскелең қаласында жарық жоқ.
kk|Бірнеше рет [[Жандосқа|PERSON]] ескерту жасадық.
en|My neighbour [[Anna Petrova|PERSON]] at [[27 Dostyk Avenue, apt 14|ADDRESS]] has been harassing me.
en|The taxi driver ([[Marat|PERSON]], car [[446 KZA 02|PLATE]]) overcharged me at the airport.
en|Please call me back on [[+7 701 333 22 11|PHONE]] or write to [[j.brown@gmail.com|EMAIL]].
en|Someone stole money from my card [[5522 0412 8856 3010|CARD]].
en|There was a fight at the corner of Abay and Baitursynov streets.
en|Officer [[Zhumabekov|PERSON]] refused to register my complaint.
en|I live at [[Almaty, Tole Bi Street 189, apt. 33|ADDRESS]] and the noise never stops.
en|[[Aliya Seitkali|PERSON]]'s husband threatened our family.
en|The shop "Aidos" sells alcohol to minors.
en|Refund to IBAN [[KZ66 7220 0001 2345 6789|IBAN]], please.
en|Mr. [[Johnson|PERSON]] from the 5th floor throws garbage from the window.
en|A car with plate [[222 ZZA 10|PLATE]] hit a pedestrian in Kostanay.
en|[[Daniyar Kassymov|PERSON]] keeps parking on the sidewalk near [[45 Kabanbay Batyr Ave, Astana|ADDRESS]].
en|The accident happened at km 47 of the Almaty–Bishkek highway.
en|My IIN is [[950716300457|NONE]], but the bank says it is invalid.
en|The company (BIN [[121040009872|BIN]]) asks for customers' IIN at the entrance.
en|Contact [[Saule|PERSON]] at [[saule.kz@outlook.com|EMAIL]] for details.
en|We saw [[Mike Peters|PERSON]] breaking into cars on Satpayev street.
"""
MARK_RE = re.compile(r"\[\[(.+?)\|([A-Z]+)\]\]")


def hand_rows() -> list[dict[str, object]]:
    rows = []
    for line in HAND.strip().splitlines():
        lang, marked = line.split("|", 1)
        text = ""
        spans: list[dict[str, object]] = []
        pos = 0
        for m in MARK_RE.finditer(marked):
            text += marked[pos : m.start()]
            if m.group(2) != "NONE":
                spans.append({"start": len(text), "end": len(text) + len(m.group(1)), "label": m.group(2)})
            text += m.group(1)
            pos = m.end()
        text += marked[pos:]
        rows.append({"text": text, "spans": spans, "lang": lang, "split": "heldout", "source": "hand"})
    return rows


COUNTS = {"tune": {"ru": 200, "kk": 200, "en": 100}, "heldout": {"ru": 90, "kk": 90, "en": 45}}
SLOT_RE = re.compile(r"\{([A-Z_]+)\}")


def render(template: str, c: Ctx) -> tuple[str, list[dict[str, object]]]:
    text = ""
    spans: list[dict[str, object]] = []
    pos = 0
    for m in SLOT_RE.finditer(template):
        text += template[pos : m.start()]
        for seg, label in SLOTS[m.group(1)](c):
            if label:
                spans.append({"start": len(text), "end": len(text) + len(seg), "label": label})
            text += seg
        pos = m.end()
    text += template[pos:]
    # A sentence may start with a slot: capitalise its first letter (offsets are unchanged).
    if text and text[0].islower():
        text = text[0].upper() + text[1:]
    return text, spans


def generate() -> list[dict[str, object]]:
    rows = []
    for split, by_lang in COUNTS.items():
        r = random.Random(f"qorgau-pii-{split}")
        c = Ctx(r, split)
        for lang, n in by_lang.items():
            templates = TEMPLATES[split][lang]
            for i in range(n):
                text, spans = render(templates[i % len(templates)], c)
                rows.append({"text": text, "spans": spans, "lang": lang, "split": split, "source": "template"})
    return rows + hand_rows()


def main() -> None:
    rows = generate()
    with OUT.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} lines to {OUT}")


if __name__ == "__main__":
    main()
