"""Paraphrase templates of the embedded e-commerce intent set.

Each intent has at least ten templates. The generator holds some out of training by seed, so test
utterances are phrasings the model never saw. Slots in braces are filled from `lexicon`.
"""

INTENT_TEMPLATES: dict[str, list[str]] = {
    "search_product": [
        "show me {color} {item}", "looking for {brand} {item}", "i need new {item} {price}",
        "do you sell {item}", "{brand} {item} {size}", "{item} for men", "find {color} {item} {price}",
        "best {item} for beginners", "{model} {capacity}", "cheap {item}", "womens {item} in {color}",
        "i want to buy {item}", "browse {item} from {brand}", "any good {item} on sale",
    ],
    "product_recommendation": [
        "what {item} would you recommend", "which {item} is best for me",
        "can you suggest a gift for my dad", "recommend something similar to {model}",
        "what do other customers buy with {model}", "help me choose between two {item}",
        "what's trending right now", "suggest {item} for a beginner", "what should i get my wife for her birthday",
        "any recommendations for {item} {price}", "i can't decide which {item} to get",
    ],
    "order_status": [
        "where is my order {order_id}", "order status {order_id}", "has my order shipped yet",
        "i ordered on {date} and nothing arrived", "when will my order {order_id} arrive",
        "track my package", "my order still says processing", "can you check on order {order_id}",
        "any update on my purchase from {date}", "what's happening with my order",
        "my parcel hasn't come yet", "is order {order_id} on its way",
    ],
    "shipping_options": [
        "how much is shipping to canada", "do you offer express delivery", "is there free shipping",
        "do you ship internationally", "how long does standard delivery take", "can i get next day delivery",
        "which carriers do you use", "shipping costs for {item}", "do you deliver on weekends",
        "can it be shipped with {carrier}", "what's the minimum for free delivery", "do you ship to po boxes",
    ],
    "change_address": [
        "i need to change my delivery address", "wrong address on order {order_id}",
        "can i update the shipping address", "please send it to my work address instead",
        "i moved, change the address for my order", "edit the address on my order",
        "ship order {order_id} to a different address", "typo in my street name on the order",
        "redirect my package to my neighbor", "update postcode on order {order_id}",
    ],
    "cancel_order": [
        "cancel my order {order_id}", "i want to cancel my purchase", "please cancel the order i placed {date}",
        "how do i cancel an order", "stop my order before it ships", "i ordered by mistake, cancel it",
        "can i still cancel order {order_id}", "cancel the {item} i ordered", "i changed my mind, cancel everything",
        "withdraw my order please", "don't ship order {order_id}",
    ],
    "return_item": [
        "i want to return {item}", "how do i return an item", "return label for order {order_id}",
        "the {item} doesn't fit, can i send it back", "what is your return policy",
        "can i return {item} after 30 days", "send back my {brand} {item}", "start a return",
        "where do i drop off a return", "i need to return a gift", "exchange {item} for another {size}",
        "can i bring it back to the store",
    ],
    "refund_status": [
        "where is my refund", "when will i get my money back", "refund for order {order_id}",
        "i returned {item} but got no refund", "my refund hasn't arrived", "how long do refunds take",
        "refund still pending since {date}", "has my refund been processed", "i was promised a refund",
        "money not back on my {payment}", "refund status please",
    ],
    "payment_problem": [
        "my payment was declined", "{payment} not working at checkout", "i was charged twice",
        "payment failed but money was taken", "can't complete payment", "card keeps getting rejected",
        "error when paying with {payment}", "why was my card charged {date}", "double charge on order {order_id}",
        "checkout won't accept my {payment}", "payment stuck on pending",
    ],
    "promo_code": [
        "my promo code {code} isn't working", "do you have any discount codes", "how do i apply a coupon",
        "code {code} says invalid", "forgot to add my voucher to the order", "is there a student discount",
        "where do i enter the promo code", "can i use two coupons", "discount didn't apply at checkout",
        "any promotions this week", "{code} expired?",
    ],
    "size_fit": [
        "what size should i get in {brand}", "does the {item} run small", "size chart for {item}",
        "i'm usually {size}, which size fits", "are these true to size", "how do {brand} {item} fit",
        "is {size} too big for me", "measurements for {size}", "should i size up in {item}",
        "what's the inseam on these jeans", "fit guide for {brand}",
    ],
    "stock_availability": [
        "is {model} in stock", "when will {item} be back in stock", "do you have {item} in {size}",
        "out of stock {model}, restock date?", "is the {color} one available", "notify me when {item} is available",
        "can you check availability of {model} {capacity}", "is it available in store", "only 1 left? any more coming",
        "{item} sold out everywhere", "do you still carry {brand} {item}",
    ],
    "product_details": [
        "what material is the {item} made of", "is {model} waterproof", "battery life of {model}",
        "what are the dimensions of the {item}", "does {model} come with a charger", "specs of {model}",
        "is the {item} machine washable", "how heavy is the {item}", "is {model} compatible with {model}",
        "what colors does the {item} come in", "does it have bluetooth",
    ],
    "warranty": [
        "does {model} have a warranty", "my {item} broke after 3 months", "warranty claim for {brand} {item}",
        "how long is the guarantee", "{model} stopped working, is it covered", "can i extend the warranty",
        "repair under warranty", "is accidental damage covered", "warranty on refurbished {item}",
        "my {item} is defective, what are my options", "guarantee period for electronics",
    ],
    "damaged_item": [
        "my {item} arrived damaged", "received a broken {item}", "the box was crushed and {item} is scratched",
        "wrong item delivered", "i got the wrong size", "item missing from my package",
        "the {item} came with a crack", "you sent me {color} instead of {color}", "parts missing from {model}",
        "package arrived open and empty", "screen of my {model} is cracked out of the box",
    ],
    "complaint": [
        "this is the worst service ever", "i want to file a complaint", "very disappointed with my order",
        "your customer service is terrible", "i've been waiting for weeks, unacceptable",
        "nobody answers my emails", "i'm never shopping here again", "the delivery guy was rude",
        "i'm really unhappy with how this was handled", "this is ridiculous", "how do i escalate a complaint",
    ],
    "account_access": [
        "i can't log in", "forgot my password", "reset my password", "my account is locked",
        "didn't get the verification email", "how do i change my email address", "login not working on the app",
        "two factor code never arrives", "someone hacked my account", "delete my account",
        "how do i update my account details", "can't sign in with google",
    ],
    "gift_card": [
        "how do i redeem a gift card", "check my gift card balance", "buy a gift card for a friend",
        "gift card not accepted", "can i use a gift card online", "do gift cards expire",
        "lost my gift card code", "send an e-gift card", "gift card balance shows zero", "add gift card to my account",
    ],
    "invoice_request": [
        "i need an invoice for order {order_id}", "can you send me a receipt", "download invoice",
        "vat invoice for my company", "where can i find my receipt", "the invoice has the wrong name",
        "need a copy of my bill for {date}", "resend the order confirmation", "invoice with my company address",
        "tax receipt for order {order_id}",
    ],
    "price_match": [
        "do you price match", "{item} is cheaper on another site", "will you match a competitor's price",
        "the price dropped after i bought it", "can i get the sale price on my order", "price adjustment for {model}",
        "found {model} cheaper elsewhere", "why did the price go up", "refund the difference, it's on sale now",
        "is this the lowest price for {item}",
    ],
    "talk_to_human": [
        "talk to a human", "can i speak to an agent", "connect me with customer service",
        "i want a real person", "call me back please", "what is your phone number",
        "live chat with support", "transfer me to a representative", "is anyone there", "human please",
        "how do i contact support",
    ],
    "unsubscribe": [
        "unsubscribe me from emails", "stop sending me newsletters", "too many promotional emails",
        "remove me from your mailing list", "opt out of marketing", "how do i turn off notifications",
        "stop the sms messages", "i don't want your newsletter", "change my email preferences",
        "stop texting me offers",
    ],
}
