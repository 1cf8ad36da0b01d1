"""Shop vocabulary shared by the data generators: categories, brands, products and slot values."""

from __future__ import annotations

# category -> product nouns a shopper would type for it.
CATEGORIES: dict[str, list[str]] = {
    "running shoes": ["running shoes", "trainers", "jogging shoes", "trail runners"],
    "sneakers": ["sneakers", "kicks", "canvas shoes", "high tops"],
    "boots": ["boots", "hiking boots", "chelsea boots", "winter boots"],
    "dresses": ["dress", "summer dress", "maxi dress", "cocktail dress"],
    "jeans": ["jeans", "skinny jeans", "denim pants", "bootcut jeans"],
    "t-shirts": ["t-shirt", "tee", "graphic tee", "polo shirt"],
    "jackets": ["jacket", "rain jacket", "puffer jacket", "windbreaker"],
    "smartphones": ["phone", "smartphone", "android phone", "mobile phone"],
    "laptops": ["laptop", "notebook computer", "gaming laptop", "ultrabook"],
    "tablets": ["tablet", "e-reader", "drawing tablet", "kids tablet"],
    "headphones": ["headphones", "earbuds", "noise cancelling headphones", "wireless earphones"],
    "smartwatches": ["smartwatch", "fitness tracker", "sports watch", "gps watch"],
    "cameras": ["camera", "mirrorless camera", "action cam", "dslr"],
    "backpacks": ["backpack", "school bag", "laptop bag", "rucksack"],
    "sofas": ["sofa", "couch", "sectional", "loveseat"],
    "lamps": ["lamp", "floor lamp", "desk lamp", "led light"],
    "coffee makers": ["coffee maker", "espresso machine", "coffee grinder", "french press"],
    "blenders": ["blender", "smoothie maker", "food processor", "hand mixer"],
    "toys": ["toy car", "building blocks", "plush toy", "doll"],
    "board games": ["board game", "puzzle", "card game", "chess set"],
    "skincare": ["face cream", "moisturizer", "sunscreen", "serum"],
    "haircare": ["shampoo", "conditioner", "hair dryer", "hair oil"],
    "tents": ["tent", "camping tent", "sleeping bag", "camping stove"],
    "bikes": ["bike", "mountain bike", "e-bike", "bike helmet"],
}

BRANDS: dict[str, list[str]] = {
    "running shoes": ["Nike", "Adidas", "Asics", "Brooks", "Hoka"],
    "sneakers": ["Converse", "Vans", "Puma", "New Balance", "Reebok"],
    "boots": ["Timberland", "Dr. Martens", "Merrell", "UGG", "Columbia"],
    "dresses": ["Zara", "H&M", "Mango", "Reformation", "Uniqlo"],
    "jeans": ["Levi's", "Wrangler", "Lee", "Diesel", "G-Star"],
    "t-shirts": ["Uniqlo", "Hanes", "Champion", "Ralph Lauren", "Lacoste"],
    "jackets": ["The North Face", "Patagonia", "Columbia", "Arc'teryx", "Canada Goose"],
    "smartphones": ["Apple", "Samsung", "Google", "OnePlus", "Xiaomi"],
    "laptops": ["Lenovo", "Dell", "HP", "Asus", "Acer"],
    "tablets": ["Apple", "Samsung", "Kindle", "Wacom", "Lenovo"],
    "headphones": ["Sony", "Bose", "Sennheiser", "JBL", "Beats"],
    "smartwatches": ["Garmin", "Fitbit", "Apple", "Polar", "Suunto"],
    "cameras": ["Canon", "Nikon", "Fujifilm", "GoPro", "Panasonic"],
    "backpacks": ["Herschel", "Fjällräven", "Osprey", "Eastpak", "JanSport"],
    "sofas": ["IKEA", "West Elm", "Ashley", "Article", "Habitat"],
    "lamps": ["Philips Hue", "IKEA", "Artemide", "Tala", "Govee"],
    "coffee makers": ["De'Longhi", "Nespresso", "Breville", "Krups", "Melitta"],
    "blenders": ["Vitamix", "Ninja", "KitchenAid", "Bosch", "Braun"],
    "toys": ["Lego", "Hot Wheels", "Playmobil", "Barbie", "Fisher-Price"],
    "board games": ["Hasbro", "Ravensburger", "Catan", "Asmodee", "Mattel"],
    "skincare": ["L'Oréal", "Nivea", "CeraVe", "La Roche-Posay", "Clinique"],
    "haircare": ["Pantene", "Dyson", "Garnier", "Head & Shoulders", "Kérastase"],
    "tents": ["Coleman", "MSR", "Big Agnes", "Vango", "Quechua"],
    "bikes": ["Trek", "Specialized", "Giant", "Cube", "Canyon"],
}

# Model names with digits and mixed case, the tokens shoppers type and tokenizers must not break.
MODELS: list[str] = [
    "iPhone15Pro",
    "iPhone 14",
    "Galaxy S24",
    "Pixel 8a",
    "Air Max 90",
    "Ultraboost 22",
    "Gel-Kayano 30",
    "ThinkPad X1",
    "XPS 13",
    "MacBook Air M2",
    "WH-1000XM5",
    "QuietComfort 45",
    "Forerunner 265",
    "EOS R50",
    "Hero12",
    "KitchenAid K400",
    "Lego 42115",
    "Clifton 9",
    "501 Original",
    "Chuck 70",
]
COLORS = ["black", "white", "red", "navy", "beige", "olive", "pink", "grey", "burgundy", "teal"]
SIZES = ["size 10.5", "size 8", "XL", "size M", "EU 42", "32x34", "size 6", "XXL", "UK 9", "size S"]
CAPACITIES = ["64GB", "128GB", "256GB", "16GB RAM", "1TB", "512GB"]
PRICES = ["under 50", "under $100", "below 200 euros", "less than 30 dollars", "around 500", "cheap"]
DATES = ["monday", "last week", "march 3", "yesterday", "the 14th", "two weeks ago", "friday", "june 21"]
PROMO_CODES = ["SAVE20", "WELCOME10", "BLACKFRIDAY", "FREESHIP", "SPRING15", "VIP25"]
PAYMENT_METHODS = ["paypal", "visa card", "credit card", "apple pay", "klarna", "gift card", "debit card"]
CARRIERS = ["DHL", "UPS", "FedEx", "the courier", "royal mail", "USPS"]


def brand_words() -> list[str]:
    """Lower-cased words of every brand in the generated shop: its `protected_words` for augmentation."""
    return sorted({word.lower() for brands in BRANDS.values() for b in brands for word in b.split()})
