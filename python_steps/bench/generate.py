"""Synthetic message corpus in the message contract (JSONL), deterministic for a seed.

The corpus is built to exercise every PATAS stage, not to look like any real platform:

* **Spam campaigns** (:data:`CAMPAIGNS`, eleven of them): each has its own language, a family of
  3–6 templates with word variation (so a campaign spans several template signatures) and its own
  entities: domains and link shorteners, phone numbers rendered in varied national and international
  formats (``+1 (415) 555-0134``, ``8 (912) 345-67-89``, ``+44 7700 900123``, ``07700900123``),
  @handles, ``t.me/`` links, emails and premium short codes (``text WIN to 87121``). Each campaign is
  active on its own day range (drift); all but two reach the last 30% of the days, so a time split
  still sees them. Spam senders rotate every few days.
* **Light obfuscation** on about a fifth of the spam: Cyrillic/Latin homoglyphs, zero-width
  characters, spaced-out letters, leetspeak, defanged links (``hxxp://``, ``[.]``).
* **Ham** in English and Russian: everyday chat, and *hard ham* that shares vocabulary and entity
  types with spam (legitimate links such as ``github.com/docs``, company phone numbers, order
  confirmations, one-time codes, "buy / sell / job / price / verify your account" talk).
* ``meta``: ``sender``, ``chat``, ``channel``, ``language`` (plus ``campaign`` on spam, a ground
  truth the pipeline must not read — it lives in meta only for tests and reports).
* Labels: ``is_spam`` true/false, with about 1% unlabelled (null); ``tas_action`` (what the
  platform did), ``user_complaint``, ``unbanned``.

Scenarios (``scenario=``):

``"default"``
    As above.
``"drift"``
    For lifecycle tests: days are split in two halves at ``days // 2``. In the second half the
    ``crypto_doubler`` campaign (:data:`DRIFT_STOPPED_CAMPAIGN`) stops, and a legitimate loyalty
    programme starts sending ham that uses the ``prize_sms`` campaign's link shortener
    (:data:`DRIFT_DOMAIN`, ``rwd.li``) and its key phrase (:data:`DRIFT_PHRASE`, "exclusive
    reward"). A rule such as ``domain = rwd.li`` mined on the first half is precise there and
    loses precision on the second half.

Output is byte-identical for the same arguments (one ``random.Random(seed)``, no set or dict order,
no wall clock; a ``.gz`` path is written with a zero gzip mtime and no file name).
"""

from __future__ import annotations

import gzip
import io
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

DRIFT_STOPPED_CAMPAIGN = "crypto_doubler"
DRIFT_DOMAIN = "rwd.li"
DRIFT_PHRASE = "exclusive reward"

# Fictional numbers (555-01xx in North America, Ofcom's 07700 900xxx drama range, and made-up
# Russian ones). A phone is (country, national digits) and is rendered in a random format per use.
Phone = tuple[str, str]


def _fmt_phone(phone: Phone, r: float) -> str:
    cc, n = phone
    if cc == "1":  # n = 10 digits
        forms = (
            f"+1 ({n[:3]}) {n[3:6]}-{n[6:]}",
            f"{n[:3]}-{n[3:6]}-{n[6:]}",
            f"+1{n}",
            f"({n[:3]}) {n[3:6]} {n[6:]}",
        )
    elif cc == "7":  # n = 10 digits
        forms = (
            f"8 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}",
            f"+7 {n[:3]} {n[3:6]}-{n[6:8]}-{n[8:]}",
            f"8{n}",
            f"+7({n[:3]}){n[3:6]}{n[6:]}",
        )
    else:  # "44", n = 10 digits without the trunk 0
        forms = (
            f"+44 {n[:4]} {n[4:]}",
            f"0{n}",
            f"0{n[:4]} {n[4:7]} {n[7:]}",
            f"+44{n}",
        )
    return forms[int(r * len(forms))]


@dataclass(frozen=True)
class Campaign:
    name: str
    language: str
    templates: tuple[str, ...]
    slots: dict[str, tuple[str, ...]]
    phones: tuple[Phone, ...]
    start: float  # share of the day span where the campaign starts
    end: float  # share of the day span where it stops (exclusive)
    weight: float = 1.0


# Template syntax: {slot} takes a value from the campaign's slots (or a phone for {phone});
# [a|b|c] picks one alternative.
CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign(
        "prize_sms",
        "en",
        (
            "[Congratulations|Congrats|URGENT]! You have won a [£1000|£500|$1000] [prize|cash prize|gift card]. "
            "Text WIN to {code} to claim your exclusive reward. T&C apply 18+",
            "[FREE|Free] entry to our [weekly|monthly] draw! Text {word} to {code} now. "
            "Claim your exclusive reward at {link}",
            "You are a WINNER! Your [mobile|number] was selected for a [£2000|£1500] bonus. "
            "Call {phone} or visit {link} to claim",
            "[Final|Last] notice: your exclusive reward of [£750|£900] expires today. Reply {word} to {code}",
        ),
        {
            "code": ("87121", "80062", "69669"),
            "word": ("WIN", "CLAIM", "PRIZE"),
            "link": ("rwd.li/claim", "rwd.li/w1n", "http://rwd.li/prize", "www.prize-claims.co.uk/now"),
        },
        (("44", "9061701461"), ("44", "7700900123")),
        0.0,
        1.0,
        1.4,
    ),
    Campaign(
        "crypto_doubler",
        "en",
        (
            "[Double|Triple] your [BTC|bitcoin|crypto] in 24 hours! Send to our wallet and get 2x back. "
            "Join {tg}",
            "Elon's official giveaway: send [0.1|0.5|1] BTC, receive [0.2|1|2] BTC. Only today at {link}",
            "I made [$5000|$12000|$8400] this week with this trading bot. DM {handle} or visit {link}",
            "[Crypto|Bitcoin] signals with [95%|98%] accuracy, [free|VIP] group: {tg}",
            "Investment opportunity: guaranteed [10%|15%|20%] daily profit. Contact {handle}",
        ),
        {
            "tg": ("t.me/cryptoboss_signals", "t.me/btc_x2_official", "https://t.me/cryptoboss_signals"),
            "handle": ("@cryptoboss_admin", "@btc_mentor_jack"),
            "link": ("https://btc-doubler.io/claim", "bit.ly/3xDbL2r", "btc-doubler.io"),
        },
        (),
        0.0,
        0.85,
        1.2,
    ),
    Campaign(
        "parcel_phish",
        "en",
        (
            "[Royal Mail|USPS|DHL]: your parcel is on hold due to an unpaid [shipping fee|customs fee] of "
            "[£1.45|$2.99|£2.10]. Pay now: {link}",
            "Your package could not be delivered. Reschedule delivery at {link} within 24h",
            "[Delivery|Parcel] notice: confirm your address at {link} or the item will be returned",
        ),
        {
            "link": (
                "https://royalmail-redelivery.com/pay",
                "royalmail-redelivery.com",
                "usps-track-help.net/r",
                "tinyurl.com/parcel-fee",
            )
        },
        (),
        0.1,
        1.0,
    ),
    Campaign(
        "bank_phish_ru",
        "ru",
        (
            "Ваша карта [заблокирована|временно заблокирована]. Для разблокировки позвоните {phone}",
            "[Служба безопасности|Безопасность] банка: подозрительная операция на [15000|49990|7300] руб. "
            "Если это не вы, звоните {phone}",
            "Уважаемый клиент! Подтвердите данные карты по ссылке {link}",
            "Ваш счет будет закрыт. Срочно подтвердите личность: {link}",
        ),
        {"link": ("sberbank-online-secure.ru/verify", "http://bank-proverka.ru", "clck.ru/3Ab7Xk")},
        (("7", "4951234567"), ("7", "9123456789"), ("7", "8002223344")),
        0.0,
        1.0,
        1.2,
    ),
    Campaign(
        "job_scam_ru",
        "ru",
        (
            "[Работа|Подработка] на дому! От [3000|5000|7000] руб в день, без опыта. Пиши {handle}",
            "Требуются [сотрудники|курьеры|операторы] на удаленку, оплата ежедневно. Подробнее {tg}",
            "Ищу [помощников|людей] для простой работы с телефона, [2|3] часа в день. Звони {phone}",
            "Набор в команду! Доход от [50|100] тысяч в месяц. Писать {handle}",
        ),
        {
            "handle": ("@hr_manager_anna", "@rabota_doma_24"),
            "tg": ("t.me/rabota_doma_24", "t.me/udalenka_job"),
        },
        (("7", "9261112233"), ("7", "9035556677")),
        0.2,
        1.0,
    ),
    Campaign(
        "account_phish",
        "en",
        (
            "Your [account|Apple ID|PayPal account] will be suspended. Verify your account now at {link}",
            "[Security alert|Unusual sign-in]: verify your account within 24 hours: {link}",
            "We noticed a login from a new device. If this wasn't you, verify your account at {link} "
            "or call {phone}",
        ),
        {"link": ("http://secure-verify-login.com", "paypa1-support.com/verify", "appleid-unlock.net")},
        (("1", "8885550172"),),
        0.0,
        0.6,
    ),
    Campaign(
        "casino",
        "en",
        (
            "Get [100|200|300] free spins at {link} with promo code {word}!",
            "[Casino|Slots] bonus: deposit $10, play with [$100|$200]. Sign up at {link}",
            "You have [50|100] free spins waiting! Claim at {link} before midnight",
        ),
        {
            "link": ("casino-royal777.com", "www.casino-royal777.com/bonus", "spin-palace-vip.net"),
            "word": ("SPIN200", "VIP777"),
        },
        (),
        0.35,
        1.0,
    ),
    Campaign(
        "loan_ru",
        "ru",
        (
            "Займ [без отказа|без проверок] до [30000|50000] руб на карту за 5 минут! {link}",
            "Одобрен кредит на [100000|250000] руб. Получите деньги сегодня: {link} или {phone}",
            "Деньги срочно? Займ под 0% для новых клиентов {link}",
        ),
        {"link": ("zaim-fast.ru", "https://zaim-fast.ru/0", "dengi-bystro.online")},
        (("7", "8005553535"),),
        0.1,
        1.0,
    ),
    Campaign(
        "dating",
        "en",
        (
            "Hi dear, I am [Anna|Kate|Lisa], [lonely|bored] tonight? Write me at {tg}",
            "Hot singles in your area want to meet you! Chat now: {link}",
            "[Hello|Hi] handsome, I saw your profile. Text me on WhatsApp {phone}",
            "Want to have some fun? Add me {handle}",
        ),
        {
            "tg": ("t.me/anna_meet_me", "t.me/lonely_kate"),
            "link": ("meet-hot-singles.club", "bit.ly/hotmeet7"),
            "handle": ("@kate_lonely22",),
        },
        (("44", "7700900456"), ("1", "4155550134")),
        0.05,
        1.0,
    ),
    Campaign(
        "pharma",
        "en",
        (
            "Cheap [meds|pills|viagra] without prescription, [70%|80%] off. Order at {link}",
            "Buy [weight loss|diet] pills online, fast shipping. Email {email}",
            "Best prices on [Cialis|Viagra|Xanax]! Discreet delivery {link}",
        ),
        {
            "link": ("pharma-discount-rx.com", "rx-cheap.biz/order"),
            "email": ("orders@rx-cheap.biz", "sales.rx@gmail.com"),
        },
        (),
        0.45,
        1.0,
        0.7,
    ),
    Campaign(
        "invest_group",
        "en",
        (
            "Join our WhatsApp investment group, members earn [£2000|£3000] a week. Message {phone}",
            "[Stock|Forex] tips from a professional trader, [free|limited] places. Contact {email} or {phone}",
            "Passive income: let our experts trade for you. Register at {link}",
        ),
        {"link": ("forex-pro-invest.co", "wa.me/447700900777"), "email": ("invest.pro.team@gmail.com",)},
        (("44", "7700900777"), ("1", "6465550188")),
        0.0,
        0.45,
        0.8,
    ),
)

# Small campaigns: a few dozen messages each over two days, starting throughout the span. They are
# what a team meets in its first export, and what a nightly run must catch early (``patas bench
# first-rule`` measures how many messages of each are seen before a rule for it is active). The
# last one is an opener made only of everyday words, with a phone number: hard on purpose.
FLASH_CAMPAIGNS: tuple[Campaign, ...] = (
    Campaign(
        "fake_invoice",
        "en",
        (
            "Invoice [#4471|#4472|#4480] is [overdue|past due]. Pay [today|now] at {link} to avoid late fees",
            "[Reminder|Final reminder]: invoice [#4471|#4480] unpaid. Settle at {link}",
        ),
        {"link": ("invoice-paynow.com/inv", "https://invoice-paynow.com/settle")},
        (),
        0.15,
        0.22,
        30,
    ),
    Campaign(
        "gift_card_survey",
        "en",
        (
            "You have been chosen for a [£100|$100] [Tesco|Amazon] gift card. Complete the survey at {link}",
            "[Last chance|Only today]: answer 3 questions, get a [£100|$100] gift card {link}",
        ),
        {"link": ("survey-rewards.win/gc", "http://survey-rewards.win")},
        (),
        0.3,
        0.37,
        30,
    ),
    Campaign(
        "tax_refund",
        "en",
        (
            "[HMRC|Tax office]: you are due a tax refund of [£264.10|£318.55]. Claim it at {link}",
            "Your tax refund of [£264.10|£318.55] is pending. Submit your details at {link}",
        ),
        {"link": ("hmrc-refund-gov.uk.com/claim", "refund-taxgov.co/uk")},
        (),
        0.45,
        0.52,
        30,
    ),
    Campaign(
        "usdt_drop_ru",
        "ru",
        (
            "Раздача [USDT|USDC]! Получи [100|200] бесплатно: {link}",
            "Бонус [100|200] USDT для новых пользователей, успей до конца дня {link}",
        ),
        {"link": ("usdt-drop.ru/bonus", "https://usdt-drop.ru")},
        (),
        0.6,
        0.67,
        30,
    ),
    Campaign(
        "toll_unpaid",
        "en",
        (
            "Unpaid toll charge of [$3.95|$4.15]. Pay within 24 hours to avoid a fine: {link}",
            "[E-ZPass|Toll service]: your balance of [$3.95|$4.15] is due. Pay at {link}",
        ),
        {"link": ("toll-pay-services.com/pay", "https://tollpay-help.net")},
        (),
        0.75,
        0.82,
        30,
    ),
    Campaign(
        "wrong_number",
        "en",
        (
            "Hi, is this [Mike|Sarah|Tom]? Sorry, wrong number. Nice to meet you anyway, text me on {phone}",
            "[Hello|Hi], are you free for [coffee|dinner] this week? Oh sorry, wrong person. I'm on WhatsApp {phone}",
        ),
        {},
        (("1", "2125550147"), ("44", "7700900888")),
        0.88,
        0.95,
        30,
    ),
)
FLASH_SEED_OFFSET = 7_919  # the small campaigns draw from their own generator (the rest stays as it was)

# Paraphrasing campaigns (``paraphrase=True``, off by default): the same offer said in varied words,
# with no link, phone, handle, short code or number, so no entity and few shared n-grams tie the
# messages together: what stage 1's signals miss and a semantic stage 2 is for. Each message is an
# opener, the offer and a call to action, each picked among synonymous phrasings, in one of three
# orders. They take the place of a share of the spam (drawn from their own generator: every other
# line is the same as without them).
PARAPHRASE_SEED_OFFSET = 104_729
PARAPHRASE_CAMPAIGNS: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    (
        "para_remote_job",
        ("Hi there", "Hello friend", "Good news", "Quick question", "Hey", "Attention please"),
        (
            "we are hiring people to work from home a couple of hours a day",
            "our company needs remote assistants, flexible hours, weekly pay",
            "earn a second income online from your sofa, no experience required",
            "looking for part time helpers who can work remotely and get paid every week",
            "easy home based job available, just a phone and some free time needed",
            "join our online team and make extra money without leaving the house",
        ),
        (
            "message me privately for details",
            "write to me in private if interested",
            "send me a direct message to apply",
            "contact me personally and I will explain",
            "reply here and I will send you the information",
            "drop me a private note to get started",
        ),
    ),
    (
        "para_investment",
        ("Dear member", "Friends", "Listen", "Important", "Greetings", "Exclusive"),
        (
            "my mentor shows how to multiply your savings with a secret trading method",
            "a private investment club is growing members' money every single day",
            "guaranteed returns from an automated strategy that never loses",
            "our expert turns small deposits into a fortune in a matter of weeks",
            "passive profits are waiting for you with this proven wealth system",
            "stop working for pennies, let professional traders grow your capital",
        ),
        (
            "ask me how to join",
            "places are limited so hurry and ask me",
            "tell me if you want in",
            "I can add you to the group today",
            "only a few spots remain, write me now",
            "let me know and I will guide you",
        ),
    ),
    (
        "para_lottery",
        ("Congratulations", "Great news", "Dear winner", "Lucky you", "Surprise", "Notice"),
        (
            "your name was picked in our international draw and a reward is reserved for you",
            "you have been selected as this month's lucky recipient of a cash award",
            "the committee chose your account to receive an unclaimed jackpot",
            "a big sum is waiting to be released to you after the annual sweepstakes",
            "our foundation's random selection made you the beneficiary of a grant",
            "you came out first in the online raffle, the winnings are yours",
        ),
        (
            "confirm your details to receive it",
            "send your full name and address to collect",
            "reply quickly or the reward goes to someone else",
            "answer this message to release the payment",
            "get in touch with the claims agent to proceed",
            "respond today to get your money transferred",
        ),
    ),
)

# Text written without spaces between words (``unspaced=True``, off by default): Thai spam campaigns
# and Thai ham. Thai puts no space between the words of a clause, only between clauses, so the word
# tokenizer sees clauses; the ham shares the spam's everyday words (receive, credit, apply, deposit,
# click, special), and some of it is machine-sent (one-time codes, bank credits, shop promotions,
# a parcel tracker on the same LINE link shortener a campaign uses). Drawn from their own generator,
# they take the place of about ``unspaced_share`` of the spam and of the ham: every other line is
# the same as without them.
UNSPACED_SEED_OFFSET = 130_363
UNSPACED_SLOTS: dict[str, tuple[str, ...]] = {
    "link": (
        "https://bit.ly/3thCsn0",
        "https://lin.ee/slotvip88",
        "slot-th99.com",
        "https://line.me/ti/p/~vip88",
    ),
    "line": ("@loanfast99", "@ngernduan", "https://lin.ee/loan24"),
    "phone_th": ("092-555-0143", "0925550143", "086-555-0178"),
    "otp": tuple(f"{(k * 7727) % 1000000:06d}" for k in range(300)),
    "acct": tuple(f"{(k * 389) % 10000:04d}" for k in range(50)),
    "amount": ("150.00", "1,250.00", "89.50", "3,000.00", "500.00", "12,400.00"),
    "parcel": tuple(f"TH{(k * 104729) % 10**9:09d}" for k in range(50)),
    "code": ("*900*1", "*777", "*121*7"),
}
UNSPACED_CAMPAIGNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "th_casino",
        (
            "[สมัครสมาชิกใหม่|สมัครวันนี้|เปิดยูสใหม่]รับโบนัส[100%|50%|ทันที] "
            "[เว็บตรงไม่ผ่านเอเย่นต์|คาสิโนออนไลน์อันดับหนึ่ง|สล็อตแตกง่าย] ฝากถอน[ไม่มีขั้นต่ำ|อัตโนมัติ] {link}",
            "[แจกเครดิตฟรี|เครดิตฟรี|รับเครดิตฟรี][ไม่ต้องฝาก|ไม่ต้องแชร์] [กดรับเลย|คลิกเลย|รีบกดรับ] {link}",
            "[ยินดีด้วย|ขอแสดงความยินดี] คุณได้รับสิทธิ์[เครดิตฟรี|โบนัสพิเศษ] [500|300|1000]บาท [กดรับที่|คลิกรับที่] {link}",
        ),
    ),
    (
        "th_loan",
        (
            "[อนุมัติไว|ผ่านง่าย|อนุมัติภายในห้านาที] สินเชื่อ[ออนไลน์|ด่วน]วงเงินสูงสุด[50,000|100,000|200,000]บาท "
            "[ไม่เช็คบูโร|ไม่ต้องมีคนค้ำ|ไม่ต้องใช้สลิปเงินเดือน] [ทักไลน์|แอดไลน์] {line}",
            "[ต้องการเงินด่วน|เงินด่วนทันใจ] [ติดต่อ|โทร] {phone_th} [ดอกเบี้ยต่ำ|ผ่อนสบาย]รับเงินเข้าบัญชีทันที",
        ),
    ),
)
UNSPACED_HAM: tuple[str, ...] = (
    "[วันนี้|พรุ่งนี้|เสาร์นี้]ไป[กินข้าว|ดูหนัง|เที่ยว]กัน[ไหม|มั้ย]",
    "ถึงบ้านแล้ว[นะ|ครับ|ค่ะ]",
    "ขอบคุณ[มาก|นะ]ครับ [เจอกันพรุ่งนี้|แล้วเจอกัน]",
    "[ฝาก|ช่วย]ซื้อ[ข้าว|น้ำ|กาแฟ]เข้าบ้าน[ด้วย|หน่อย]นะ",
    "[เดี๋ยว|จะ]โทรกลับ[นะ|ครับ] ตอนนี้[ติดประชุม|ขับรถอยู่]",
    "[ได้รับ|รับ]ของแล้ว ขอบคุณที่ส่งมาให้[นะ|ครับ]",
    "รหัส OTP ของคุณคือ {otp} [ห้ามเปิดเผยรหัสนี้แก่ผู้อื่น|รหัสมีอายุห้านาที]",
    "[เงินเข้า|ยอดเงินเข้า]บัญชี xx{acct} จำนวน {amount}บาท [คงเหลือ|ยอดคงเหลือ] {amount}บาท",
    "คุณได้รับเครดิตเงินคืน {amount}บาท เข้าบัตร[เครดิต|เดบิต] xx{acct}",
    "[ลูกค้า|สมาชิก]ที่รัก รับสิทธิ์พิเศษ[ส่วนลด10%|ส่วนลด15%] เมื่อช้อปครบ[500|1000]บาท ที่สาขาใกล้บ้าน",
    "ติดตามสถานะพัสดุ {parcel} ได้ที่ LINE https://lin.ee/track[th|parcel]",
    "สมัครแพ็กเกจเน็ต[รายเดือน|รายสัปดาห์] กด {code}# โทรออก [คลิกดูรายละเอียด|ดูรายละเอียด]ในแอป",
)

# Ham: (language, weight, templates). {slot} values come from HAM_SLOTS.
HAM_TOPICS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    (
        "en",
        5.0,
        (
            "[ok|okay|sure], see you at [7|8|noon] then",
            "Are you coming to the [meeting|party|game] [tonight|tomorrow]?",
            "[Thanks|Thank you|Thx] for [yesterday|the help|the link], really appreciate it",
            "Can you pick up [milk|bread|the kids] on the way home?",
            "I'll be [late|10 minutes late|there soon], [traffic is bad|bus is slow|sorry]",
            "[lol|haha] that's [hilarious|so true|awesome]",
            "Did you watch the [match|new episode|news] [last night|yesterday]?",
            "Happy birthday {name}! Have a great day",
            "Let's [grab lunch|get coffee|meet up] [tomorrow|on Friday|next week]",
            "[Good morning|Morning]! How did you sleep?",
        ),
    ),
    (
        "en",
        2.5,
        (
            "Docs are at {legit_link}, check the [install|quickstart] section",
            "Your order #{order} has been [shipped|dispatched]. Track it at {legit_shop}",
            "Your verification code is {otp}. Never share this code with anyone.",
            "To verify your account, enter {otp} in the app. If you didn't request this, ignore this message.",
            "Selling my [bike|sofa|old laptop], price [£150|$200|£80], call me on {phone}",
            "Anyone know a [job|part-time job|internship] in [data|marketing|sales]? Saw one at {legit_link}",
            "What's the price of the [tickets|flat|car]? Happy to buy if it's still available",
            "Customer support: call {company_phone}, Mon-Fri 9-5",
            "I won [the raffle|a prize at work|the quiz] [lol|haha], free pizza for everyone",
            "Reminder: your appointment is on [Monday|Tuesday|Friday] at [10:00|14:30]. Call {company_phone} to reschedule",
            "Check out this repo {legit_link}, the bug is fixed in the latest release",
            "Your [bank|card] statement is ready in the app. We will never ask for your PIN.",
        ),
    ),
    (
        "en",
        3.0,
        (
            # Everyday ham that uses words spam campaigns lean on: single words like these must
            # never look safe enough to block on their own.
            "[Call|Text] me [now|when you're free|after work], [it's urgent|no rush|need to talk]",
            "I'll text you the [address|details|code] [now|later|tonight]",
            "[Free|Are you free] [tonight|this weekend|now]? [Want to|Let's] [grab dinner|watch a movie]",
            "The delivery [guy|man|van] is [here now|late again|outside], can you open the door?",
            "Did you [claim|get] your [refund|expenses|parking refund] [yet|already]?",
            "We [won|lost] the [match|game|quiz] [lol|haha]! [Drinks|Pizza] are on me",
            "Don't click that link in the [group|chat], it's [a scam|spam|fake]",
            "Got a [bonus|raise|prize] at work [today|this month], [so happy|finally]!",
            "Can you send me the cash for the [tickets|gift|dinner] [now|later|tomorrow]?",
            "[Offer|Deal] on the [flat|car|job] came through, [signing now|call you later]",
            "My [account|phone|card] got blocked, [calling|texting] the bank now",
            "Limited spots left for the [workshop|trip|course], sign up [now|today] on the team page",
        ),
    ),
    (
        "ru",
        3.0,
        (
            "[Привет|Хай]! Как дела?",
            "[Буду|Приеду] через [10|15|20] минут",
            "[Спасибо|Спс] за [помощь|вчера|ссылку]!",
            "Купи [хлеба|молока|сыра] по дороге, пожалуйста",
            "Во сколько [встречаемся|собрание|ужин]?",
            "С днем рождения, {name_ru}!",
            "[Ок|Хорошо|Договорились], [до завтра|созвонимся|увидимся]",
        ),
    ),
    (
        "ru",
        1.5,
        (
            "Продам [диван|велосипед|ноутбук], цена [5000|12000|3000] руб, звоните {phone_ru}",
            "Ссылка на документацию: {legit_link}",
            "Ваш код подтверждения: {otp}. Никому не сообщайте этот код.",
            "Ищу работу [программистом|бухгалтером|водителем], есть вакансии?",
            "Заказ №{order} [отправлен|доставлен]. Отследить: {legit_shop}",
            "Кто знает хорошего [врача|мастера|юриста]? Скиньте телефон",
        ),
    ),
)

HAM_SLOTS: dict[str, tuple[str, ...]] = {
    "legit_link": (
        "github.com/docs",
        "https://github.com/psf/requests",
        "docs.python.org/3/",
        "https://www.postgresql.org/docs/",
        "en.wikipedia.org/wiki/Spam",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "stackoverflow.com/questions/231767",
        "https://hh.ru/vacancy/91234567",
    ),
    "legit_shop": (
        "amazon.com/track",
        "https://www.ozon.ru/my/orders",
        "royalmail.com/track-your-item",
        "dhl.com/tracking",
    ),
    "name": ("Sam", "Alex", "Maria", "Tom", "Priya", "Jon"),
    "name_ru": ("Саша", "Маша", "Дима", "Оля", "Катя"),
}
HAM_PHONES: tuple[Phone, ...] = (("44", "7700900321"), ("1", "2125550143"), ("44", "7700900654"))
HAM_PHONES_RU: tuple[Phone, ...] = (("7", "9167778899"), ("7", "9031234455"))
COMPANY_PHONES: tuple[Phone, ...] = (("1", "8005550199"), ("44", "3005550111"))

# The drift scenario's legitimate loyalty programme (ham that looks like the prize campaign).
DRIFT_HAM = (
    "MegaMart loyalty: your exclusive reward is ready, 10% off this week at rwd.li/megamart",
    "Thanks for shopping at MegaMart! Claim your exclusive reward in the app or at rwd.li/megamart",
    "Your MegaMart points are waiting: exclusive reward for members at rwd.li/mm-points",
)

_LATIN_TO_CYR = str.maketrans("aeopcxyAEOPCXHBMTK", "аеорсхуАЕОРСХНВМТК")
_CYR_TO_LAT = str.maketrans("аеорсхуАЕОРСХНВМТК", "aeopcxyAEOPCXHBMTK")
_LEET = str.maketrans("aeiost", "4310$7")
_ZW = ("\u200b", "\u200c", "\u200d", "\u2060")


Renderer = Callable[[Callable[[], float]], str]


def _compile(template: str, slots: dict[str, Sequence[str]]) -> Renderer:
    """Compile ``template`` into a function of the random source returning one rendering."""
    parts: list[str | tuple[str, ...]] = []
    i = 0
    buf = ""
    while i < len(template):
        ch = template[i]
        if ch == "[":
            j = template.index("]", i)
            parts.extend([buf, tuple(template[i + 1 : j].split("|"))])
            buf, i = "", j + 1
        elif ch == "{":
            j = template.index("}", i)
            parts.extend([buf, tuple(slots[template[i + 1 : j]])])
            buf, i = "", j + 1
        else:
            buf += ch
            i += 1
    parts.append(buf)
    frozen = tuple(p for p in parts if p != "")

    def render(r: Callable[[], float]) -> str:
        return "".join(p if type(p) is str else p[int(r() * len(p))] for p in frozen)

    return render


def _obfuscate(text: str, language: str, r: Callable[[], float]) -> str:
    kind = int(r() * 5)
    if kind == 0:  # homoglyphs from the other script
        return text.translate(_LATIN_TO_CYR if language == "en" else _CYR_TO_LAT)
    if kind == 1:  # zero-width characters inside words
        words = text.split(" ")
        zw = _ZW[int(r() * len(_ZW))]
        return " ".join(w[:2] + zw + w[2:] if len(w) > 4 else w for w in words)
    if kind == 2:  # spaced-out first long word
        words = text.split(" ")
        for k, w in enumerate(words):
            if len(w) >= 5 and w.isalpha():
                words[k] = " ".join(w.upper())
                break
        return " ".join(words)
    if kind == 3:
        return text.translate(_LEET) if language == "en" else text.translate(_CYR_TO_LAT)
    # defanged links
    return (
        text.replace("https://", "hxxps://")
        .replace("http://", "hxxp://")
        .replace(".com", "[.]com")
        .replace(".ru", "[.]ru")
    )


@dataclass(frozen=True)
class GenerateReport:
    path: Path
    rows: int
    spam: int
    ham: int
    unlabelled: int

    def as_dict(self) -> dict[str, object]:
        return {
            "path": str(self.path),
            "rows": self.rows,
            "spam": self.spam,
            "ham": self.ham,
            "unlabelled": self.unlabelled,
        }


def _phone_pool(phones: Sequence[Phone]) -> tuple[str, ...]:
    # Every phone in each of its four formats: picking from this pool varies the format per use.
    return tuple(_fmt_phone(p, k / 4) for p in phones for k in range(4))


def generate_corpus(
    rows: int,
    seed: int,
    out_path: str | Path,
    *,
    start: str = "2026-01-01",
    days: int = 30,
    spam_share: float = 0.2,
    unlabelled_share: float = 0.01,
    obfuscation_share: float = 0.2,
    scenario: str = "default",
    small_campaigns: bool = True,
    paraphrase: bool = False,
    paraphrase_share: float = 0.15,
    unspaced: bool = False,
    unspaced_share: float = 0.15,
) -> GenerateReport:
    """Write ``rows`` messages as JSONL to ``out_path`` (gzip when it ends in ``.gz``).

    Messages are spread evenly over ``days`` days from ``start`` (UTC), in time order. ``spam_share``
    is the share of spam among labelled messages; see the module docstring for ``scenario``.
    ``small_campaigns``: the :data:`FLASH_CAMPAIGNS` take the place of a few dozen spam messages
    each (drawn from their own generator, so the spam share and every other line are the same with
    or without them). ``paraphrase``: the :data:`PARAPHRASE_CAMPAIGNS` take the place of about
    ``paraphrase_share`` of the spam (their own generator; off by default, so the default output
    does not change). ``unspaced``: Thai messages (:data:`UNSPACED_CAMPAIGNS`,
    :data:`UNSPACED_HAM`) take the place of about ``unspaced_share`` of the spam and of the ham
    (their own generator, off by default).
    """
    if rows < 0 or days < 1 or not 0.0 <= spam_share <= 1.0:
        raise ValueError("rows must be >= 0, days >= 1 and spam_share in [0, 1]")
    if scenario not in ("default", "drift"):
        raise ValueError(f"unknown scenario {scenario!r} (expected 'default' or 'drift')")
    rng = random.Random(seed)
    r = rng.random
    day0 = date.fromisoformat(start)
    half = days // 2

    campaigns = []
    for c in CAMPAIGNS:
        slots: dict[str, Sequence[str]] = {**c.slots, "phone": _phone_pool(c.phones)}
        first = int(c.start * days)
        last = max(first + 1, round(c.end * days))
        if scenario == "drift" and c.name == DRIFT_STOPPED_CAMPAIGN:
            last = half
        campaigns.append((c, tuple(_compile(t, slots) for t in c.templates), first, last))

    ham_slots: dict[str, Sequence[str]] = {
        **HAM_SLOTS,
        "phone": _phone_pool(HAM_PHONES),
        "phone_ru": _phone_pool(HAM_PHONES_RU),
        "company_phone": _phone_pool(COMPANY_PHONES),
        "order": tuple(str(100000 + k * 7919 % 900000) for k in range(200)),
        "otp": tuple(f"{(k * 7727) % 1000000:06d}" for k in range(300)),
    }
    ham_topics = [(lang, w, tuple(_compile(t, ham_slots) for t in ts)) for lang, w, ts in HAM_TOPICS]
    drift_ham = tuple(_compile(t, {}) for t in DRIFT_HAM)
    ham_weight_total = sum(w for _, w, _ in ham_topics)

    flash = _plan_flash(rows, days, seed) if small_campaigns else {}
    para_r = random.Random(seed + PARAPHRASE_SEED_OFFSET).random if paraphrase else None
    th_r = random.Random(seed + UNSPACED_SEED_OFFSET).random if unspaced else None
    th_spam = tuple(
        (name, tuple(_compile(t, UNSPACED_SLOTS) for t in templates))
        for name, templates in UNSPACED_CAMPAIGNS
    )
    th_ham = tuple(_compile(t, UNSPACED_SLOTS) for t in UNSPACED_HAM)

    ham_senders = tuple(f"u{k:05d}" for k in range(5000))
    chats = tuple(f"chat_{k:03d}" for k in range(120))
    channels = ("group", "group", "group", "dm", "channel_comment")

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = open(out, "wb")  # noqa: SIM115 -- wrapped below, closed in finally
    try:
        sink: io.BufferedIOBase = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) if out.suffix == ".gz" else raw
        )
        spam = ham = unlabelled = 0
        index = 0
        dumps = json.dumps
        for d in range(days):
            n_day = rows * (d + 1) // days - rows * d // days
            day_str = (day0 + timedelta(days=d)).isoformat()
            active = [(c, ts) for c, ts, first, last in campaigns if first <= d < last]
            weights_total = sum(c.weight for c, _ in active)
            seconds = sorted(int(r() * 86400) for _ in range(n_day))
            lines: list[str] = []
            pending = sorted(flash.get(d, {}).items())
            for pos, sec in enumerate(seconds):
                index += 1
                ts = f"{day_str}T{sec // 3600:02d}:{sec % 3600 // 60:02d}:{sec % 60:02d}Z"
                if active and r() < spam_share:
                    pick = r() * weights_total
                    for c, templates in active:  # noqa: B007 -- c and templates are used after the loop
                        pick -= c.weight
                        if pick < 0:
                            break
                    text = templates[int(r() * len(templates))](r)
                    if r() < obfuscation_share:
                        text = _obfuscate(text, c.language, r)
                    lang = c.language
                    # Spam senders rotate: a campaign's sender pool changes every three days.
                    sender = f"s_{c.name}_{d // 3}_{int(r() * 12)}"
                    chat = chats[int(r() * len(chats))]
                    is_spam = "true"
                    extra = f', "campaign": "{c.name}"'
                    action = "blocked" if r() < 0.7 else "allowed"
                    complaint = "true" if action == "allowed" and r() < 0.3 else "false"
                    unbanned = "false"
                    spam += 1
                else:
                    if scenario == "drift" and d >= half and r() < 0.03:
                        text = drift_ham[int(r() * len(drift_ham))](r)
                        lang = "en"
                    else:
                        pick = r() * ham_weight_total
                        for lang, w, templates in ham_topics:  # noqa: B007
                            pick -= w
                            if pick < 0:
                                break
                        text = templates[int(r() * len(templates))](r)
                        if r() < 0.4:  # chat messages often run to a second sentence
                            text = f"{text}. {templates[int(r() * len(templates))](r)}"
                    # Ham senders: a skewed pool (a few talk a lot).
                    sender = ham_senders[int(r() * r() * len(ham_senders))]
                    chat = chats[int(r() * r() * len(chats))]
                    is_spam = "false"
                    extra = ""
                    blocked = r() < 0.01
                    action = "blocked" if blocked else "allowed"
                    complaint = "false"
                    unbanned = "true" if blocked and r() < 0.5 else "false"
                    ham += 1
                if extra and pending and pending[0][0] <= pos:  # a small campaign takes this spam's place
                    _, (text, lang, sender, flash_name) = pending.pop(0)
                    extra = f', "campaign": "{flash_name}"'
                elif extra and para_r is not None and para_r() < paraphrase_share:
                    text, sender, para_name = _paraphrase(para_r, d)
                    lang, extra = "en", f', "campaign": "{para_name}"'
                elif th_r is not None and th_r() < unspaced_share:
                    if extra:
                        name, templates = th_spam[int(th_r() * len(th_spam))]
                        text, sender = (
                            templates[int(th_r() * len(templates))](th_r),
                            f"s_{name}_{d // 3}_{int(th_r() * 12)}",
                        )
                        extra = f', "campaign": "{name}"'
                    else:
                        text = th_ham[int(th_r() * len(th_ham))](th_r)
                    lang = "th"
                if r() < unlabelled_share:
                    is_spam = "null"
                    unlabelled += 1
                    if extra:
                        spam -= 1
                    else:
                        ham -= 1
                channel = channels[int(r() * len(channels))]
                lines.append(
                    f'{{"id": "g{seed}-{index:09d}", "timestamp": "{ts}", "text": {dumps(text, ensure_ascii=False)}, '
                    f'"is_spam": {is_spam}, "meta": {{"sender": "{sender}", "chat": "{chat}", '
                    f'"channel": "{channel}", "language": "{lang}"{extra}}}, "tas_action": "{action}", '
                    f'"user_complaint": {complaint}, "unbanned": {unbanned}}}\n'
                )
            sink.write("".join(lines).encode("utf-8"))
        if sink is not raw:
            sink.close()
    finally:
        raw.close()
    return GenerateReport(out, rows, spam, ham, unlabelled)


def _paraphrase(r: Callable[[], float], day: int) -> tuple[str, str, str]:
    """(text, sender, campaign) of one paraphrasing campaign's message."""
    name, openers, offers, actions = PARAPHRASE_CAMPAIGNS[int(r() * len(PARAPHRASE_CAMPAIGNS))]
    opener, offer, action = (p[int(r() * len(p))] for p in (openers, offers, actions))
    order = int(r() * 3)
    if order == 0:
        text = f"{opener}! {offer[0].upper()}{offer[1:]}. {action[0].upper()}{action[1:]}."
    elif order == 1:
        text = f"{offer[0].upper()}{offer[1:]}, {action}."
    else:
        text = f"{opener}, {offer}! {action[0].upper()}{action[1:]}"
    return text, f"s_{name}_{day // 3}_{int(r() * 12)}", name


def _plan_flash(rows: int, days: int, seed: int) -> dict[int, dict[int, tuple[str, str, str, str]]]:
    """{day: {position in the day: (text, language, sender, campaign)}} for the small campaigns: each
    sends up to its weight in messages (a thirtieth of the corpus at most) over its days."""
    rng = random.Random(seed + FLASH_SEED_OFFSET)
    r = rng.random
    plan: dict[int, dict[int, tuple[str, str, str, str]]] = {}
    for c in FLASH_CAMPAIGNS:
        slots: dict[str, Sequence[str]] = {**c.slots, "phone": _phone_pool(c.phones)}
        templates = tuple(_compile(t, slots) for t in c.templates)
        first = min(days - 1, int(c.start * days))
        last = max(first + 1, min(days, round(c.end * days)))
        count = min(int(c.weight), rows // 30)
        for k in range(count):
            d = first + k * (last - first) // max(count, 1)
            n_day = rows * (d + 1) // days - rows * d // days
            if n_day <= 0:
                continue
            pos = int(r() * n_day)
            text = templates[int(r() * len(templates))](r)
            sender = f"s_{c.name}_{int(r() * 6)}"
            plan.setdefault(d, {}).setdefault(pos, (text, c.language, sender, c.name))
    return plan
