"""The vetted reply bank: customer-service replies per intent, with slots filled from the conversation.

A reply whose slots the conversation cannot fill is never used with invented values: each intent has
a reply without slots, which asks for what is missing or answers in general terms.
"""

from __future__ import annotations

import string

REPLY_BANK: dict[str, list[str]] = {
    "order_status": [
        "Thanks! Order {order_id} is on its way; you can follow it with the tracking link in your confirmation email.",
        "Could you share your order number so I can check where your parcel is?",
    ],
    "shipping_options": [
        "We ship standard (3-5 working days, free over 50) and express (next working day, 9.90). "
        "International delivery is available to most countries.",
    ],
    "change_address": [
        "I can update the delivery address of order {order_id} as long as it has not shipped. "
        "Please send the new address.",
        "Please share the order number and the new address, and I'll update it if the parcel has not shipped.",
    ],
    "cancel_order": [
        "Order {order_id} can be cancelled while it has not shipped; I've requested the cancellation and "
        "you'll get a confirmation email.",
        "Which order would you like to cancel? Please send the order number.",
    ],
    "return_item": [
        "You can return the {product} within 30 days. Start the return in your account to print a free label.",
        "You can return items within 30 days: start the return under Orders in your account to get a free label.",
    ],
    "refund_status": [
        "The refund for order {order_id} is issued within 5 working days of your return arriving; "
        "your bank may take 3 more days.",
        "Refunds are issued within 5 working days after we receive the return. "
        "Could you share your order number so I can check?",
    ],
    "payment_problem": [
        "I'm sorry about the payment trouble with {payment}. A declined or duplicate authorisation is "
        "released by your bank within a few days; nothing is charged twice.",
        "I'm sorry about the payment trouble. Duplicate authorisations are released by your bank within "
        "a few days. Which payment method did you use?",
    ],
    "promo_code": [
        "The code {code} may have expired or not apply to sale items. Enter it at checkout in the "
        "'Promo code' field to see its conditions.",
        "Promo codes go in the 'Promo code' field at checkout; one code applies per order.",
    ],
    "size_fit": [
        "The size guide on the product page of the {product} lists measurements for every size; "
        "if you're between sizes we suggest the larger one.",
        "Every product page has a size guide with measurements; between two sizes, we suggest the larger one.",
    ],
    "stock_availability": [
        "The {product} shows its stock on the product page; use 'Notify me' to get an email when it's back.",
        "Stock is shown on each product page; 'Notify me' sends an email as soon as an item is back.",
    ],
    "product_details": [
        "All specifications of the {product} are under 'Details' on its product page.",
        "You'll find all specifications under 'Details' on the product page. Which product is it about?",
    ],
    "product_recommendation": [
        "Our best-rated picks are under 'Top rated' in each category; filters help narrow by budget.",
    ],
    "search_product": [
        "Here are our {category}: use the filters for brand, size and price to narrow the results.",
        "You can search the whole catalogue from the search bar; filters narrow by brand, size and price.",
    ],
    "warranty": [
        "The {product} has a 2-year warranty. Start a claim under Orders > Warranty with a photo of the fault.",
        "All products carry a 2-year warranty; start a claim under Orders > Warranty with a photo of the fault.",
    ],
    "damaged_item": [
        "I'm sorry the {product} arrived damaged. Please send a photo and we'll ship a replacement or refund it.",
        "I'm sorry your item arrived damaged or wrong. Please send a photo and your order number.",
    ],
    "complaint": [
        "I'm sorry about your experience. I've passed your feedback to our customer care team, "
        "who will contact you within 24 hours.",
    ],
    "account_access": [
        "Use 'Forgot password' on the sign-in page to get a reset link; it is valid for 24 hours.",
    ],
    "gift_card": [
        "Gift cards are redeemed at checkout under 'Gift card' and are valid for 3 years; "
        "your balance shows in your account.",
    ],
    "invoice_request": [
        "The invoice for order {order_id} is under Orders in your account as a PDF; I've also emailed it to you.",
        "Invoices are under Orders in your account as PDFs. Which order do you need it for?",
    ],
    "price_match": [
        "We match the price of major retailers for identical items in stock; send us the link and we'll "
        "refund the difference.",
    ],
    "talk_to_human": [
        "I'm connecting you with a member of our team now; the wait is usually under 5 minutes.",
    ],
    "unsubscribe": [
        "I've unsubscribed you from marketing emails; the change takes effect within 48 hours.",
    ],
}


def slots_of(template: str) -> set[str]:
    """The slot names in a template, e.g. `{"order_id"}`."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def fill_reply(intent: str, values: dict[str, str]) -> str:
    """The first vetted reply for `intent` whose slots `values` can all fill.

    Example:
        >>> fill_reply("cancel_order", {})
        'Which order would you like to cancel? Please send the order number.'
    """
    for template in REPLY_BANK[intent]:
        if slots_of(template) <= set(values):
            return template.format(**values)
    raise KeyError(f"no reply for intent {intent!r} without slots")  # the bank always has one


def reply_bank_entries(bank: dict[str, list[str]] | None = None) -> list[dict]:
    """The bank as `ReplyModel` takes it: `[{"text": template, "intent": name}, ...]`."""
    bank = REPLY_BANK if bank is None else bank
    return [{"text": text, "intent": intent} for intent, texts in bank.items() for text in texts]


def shop_slot_values(catalog: list[dict]) -> dict[str, list[str]]:
    """The phrases each vocabulary slot of the bank can take in a shop: product names (titles before the
    comma, as customers quote them), payment methods, promo codes, categories."""
    from ecomrec_tf.data import lexicon

    return {
        "product": sorted({item["title"].split(",")[0] for item in catalog}),
        "payment": list(lexicon.PAYMENT_METHODS),
        "code": list(lexicon.PROMO_CODES),
        "category": sorted(lexicon.CATEGORIES),
    }
