"""Reference vocabularies for synthetic shops, shaped like the classicmodels sample."""

from __future__ import annotations

# The sample's seven product lines, with its text descriptions shortened.
PRODUCT_LINES: tuple[tuple[str, str], ...] = (
    ("Classic Cars", "Attention car enthusiasts: make your wildest car ownership dreams come true."),
    ("Motorcycles", "Our motorcycles are state of the art replicas of classic as well as contemporary models."),
    ("Planes", "Unique, diecast airplane and helicopter replicas suitable for collections."),
    ("Ships", "The perfect holiday or anniversary gift for executives, clients, friends and family."),
    ("Trains", "Model trains are a rewarding hobby for enthusiasts of all ages."),
    ("Trucks and Buses", "The Truck and Bus models are realistic replicas of buses and specialized trucks."),
    ("Vintage Cars", "Our Vintage Car models realistically portray automobiles produced from 1900 to 1940."),
)

# The sample's scales (text, and the number used in product codes such as S10_1678).
SCALES: tuple[str, ...] = ("1:10", "1:12", "1:18", "1:24", "1:32", "1:50", "1:72", "1:700")

VENDORS: tuple[str, ...] = (
    "Min Lin Diecast", "Classic Metal Creations", "Highway 66 Mini Classics", "Red Start Diecast",
    "Motor City Art Classics", "Second Gear Diecast", "Autoart Studio Design", "Welly Diecast Productions",
    "Unimax Art Galleries", "Studio M Art Models", "Exoto Designs", "Gearbox Collectibles",
    "Carousel DieCast Legends",
)

# Product names come from their line: a make and a kind that belong together ("1952 Boeing
# Airliner" is a plane, "1912 Mayflower Clipper" a ship), as the sample's names do.
NAMES_BY_LINE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Classic Cars": (("Ferrari", "Ford", "Chevrolet", "Porsche", "Mercedes-Benz", "Jaguar", "Alpine", "Dodge",
                      "Fiat", "Bugatti"), ("Roadster", "Coupe", "Convertible", "Sedan", "Racer", "Gran Turismo")),
    "Motorcycles": (("Harley Davidson", "Ducati", "BMW", "Honda", "Triumph", "Indian"),
                    ("Ultimate Chopper", "Superbike", "Scrambler", "Touring Bike", "Café Racer")),
    "Planes": (("Boeing", "Lockheed", "Douglas", "Supermarine", "Piper", "Sopwith"),
               ("Biplane", "Airliner", "Seaplane", "Fighter", "Helicopter", "Mail Plane")),
    "Ships": (("Mayflower", "Pont Yacht", "Collectable Wooden", "Cutty Sark", "Queen Mary"),
              ("Clipper", "Schooner", "Yacht", "Ocean Liner", "Galleon")),
    "Trains": (("Union Pacific", "Santa Fe", "Orient Express", "Pennsylvania", "Collectable Wooden"),
               ("Steam Engine", "Diesel Locomotive", "Freight Car", "Passenger Coach")),
    "Trucks and Buses": (("Peterbilt", "Ford", "Dodge", "Volvo", "Mack", "Greyhound"),
                         ("Pickup", "Delivery Van", "Tanker", "Dump Truck", "Coach Bus", "Fire Engine")),
    "Vintage Cars": (("Ford", "Bugatti", "Rolls-Royce", "Duesenberg", "Citroën", "Renault", "Škoda"),
                     ("Roadster", "Limousine", "Touring", "Phaeton", "Town Car")),
}
# how many makes and kinds are drawn from (the generator's random stream stays what it was)
MAKE_DRAWS, KIND_DRAWS = 22, 14

# (city, state or None, country, postal-code pattern or None). '#' = digit, 'A' = letter.
PLACES: tuple[tuple[str, str | None, str, str | None], ...] = (
    ("Nantes", None, "France", "#####"),
    ("Paris", None, "France", "#####"),
    ("Lyon", None, "France", "#####"),
    ("Marseille", None, "France", "#####"),
    ("Las Vegas", "NV", "USA", "#####"),
    ("San Francisco", "CA", "USA", "#####"),
    ("NYC", "NY", "USA", "#####"),
    ("Boston", "MA", "USA", "#####"),
    ("Philadelphia", "PA", "USA", "#####"),
    ("San Rafael", "CA", "USA", "#####"),
    ("New Haven", "CT", "USA", "#####"),
    ("Melbourne", "Victoria", "Australia", "####"),
    ("Sydney", "NSW", "Australia", "####"),
    ("Stavern", None, "Norway", "####"),
    ("Bergen", None, "Norway", "####"),
    ("Warszawa", None, "Poland", "##-###"),
    ("Kraków", None, "Poland", "##-###"),
    ("Łódź", None, "Poland", "##-###"),
    ("Frankfurt", None, "Germany", "#####"),
    ("Köln", None, "Germany", "#####"),
    ("München", None, "Germany", "#####"),
    ("Düsseldorf", None, "Germany", "#####"),
    ("Madrid", None, "Spain", "#####"),
    ("Sevilla", None, "Spain", "#####"),
    ("Málaga", None, "Spain", "#####"),
    ("Luleå", None, "Sweden", "### ##"),
    ("Malmö", None, "Sweden", "### ##"),
    ("Göteborg", None, "Sweden", "### ##"),
    ("København", None, "Denmark", "####"),
    ("Århus", None, "Denmark", "####"),
    ("Singapore", None, "Singapore", "######"),
    ("Lisboa", None, "Portugal", "####"),
    ("Tokyo", "Tokyo", "Japan", "###-####"),
    ("Osaka", "Osaka", "Japan", "###-####"),
    ("Helsinki", None, "Finland", "#####"),
    ("Espoo", None, "Finland", "#####"),
    ("London", None, "UK", "AA# #AA"),
    ("Manchester", None, "UK", "A# #AA"),
    ("Dublin", None, "Ireland", None),
    ("Montréal", "Québec", "Canada", "A#A #A#"),
    ("Vancouver", "BC", "Canada", "A#A #A#"),
    ("Tsawassen", "BC", "Canada", "A#A #A#"),
    ("Hong Kong", None, "Hong Kong", None),
    ("Torino", None, "Italy", "#####"),
    ("Reggio Emilia", None, "Italy", "#####"),
    ("Genève", None, "Switzerland", "####"),
    ("Zürich", None, "Switzerland", "####"),
    ("Amsterdam", None, "Netherlands", "#### AA"),
    ("Bruxelles", None, "Belgium", "####"),
    ("Charleroi", None, "Belgium", "####"),
    ("Auckland", None, "New Zealand", "####"),
    ("Wellington", None, "New Zealand", "####"),
    ("Johannesburg", None, "South Africa", "####"),
    ("Sankt-Peterburg", None, "Russia", "######"),
    ("Herzlia", None, "Israel", "#####"),
    ("Makati City", "Metro Manila", "Philippines", "####"),
    ("Salzburg", None, "Austria", "####"),
    ("Graz", None, "Austria", "####"),
    ("Reykjavík", None, "Iceland", "###"),
    ("São Paulo", "SP", "Brazil", "#####-###"),
)

OFFICES: tuple[tuple[str, str, str | None, str, str, str], ...] = (
    # officeCode, city, state, country, postalCode, territory
    ("1", "San Francisco", "CA", "USA", "94080", "NA"),
    ("2", "Boston", "MA", "USA", "02107", "NA"),
    ("3", "NYC", "NY", "USA", "10022", "NA"),
    ("4", "Paris", None, "France", "75017", "EMEA"),
    ("5", "Tokyo", "Chiyoda-Ku", "Japan", "102-8578", "Japan"),
    ("6", "Sydney", None, "Australia", "NSW 2010", "APAC"),
    ("7", "London", None, "UK", "EC2N 1HN", "EMEA"),
)

FIRST_NAMES: tuple[str, ...] = (
    "Carine", "Jean", "Peter", "Janine", "Jonas", "Susan", "Zbyszek", "Roland", "Julie", "Kwai",
    "Diego", "Christina", "Jytte", "Mary", "Eric", "Jeff", "Kelvin", "Juri", "Wendy", "Veysel",
    "Dean", "Ann", "Maria", "Björn", "Anaïs", "Zoë", "Miguel", "Sven", "Renée", "Håkon",
)
LAST_NAMES: tuple[str, ...] = (
    "Schmitt", "King", "Ferguson", "Labrune", "Bergulfsen", "Nelson", "Piestrzeniewicz", "Keitel",
    "Murphy", "Lee", "Freyre", "Berglund", "Petersen", "Saveley", "Natividad", "Young", "Leong",
    "Hashimoto", "Victorino", "Oeztan", "Cassidy", "Brown", "Larsson", "Müller", "Dupont", "Ruiz",
    "Ørsted", "Nguyen", "Kowalski", "Moreau",
)
COMPANY_WORDS: tuple[str, ...] = (
    "Atelier", "Signal", "Australian", "Collectors", "Toys", "Gifts", "Mini", "Wheels", "Classics",
    "Models", "Auto", "Diecast", "Replicas", "Souvenirs", "Handel", "Boutique", "Online", "Corp.",
    "Co.", "Ltd.", "Imports", "Direct", "Heritage", "Garage",
)
STATUSES: tuple[str, ...] = ("Shipped", "Resolved", "Cancelled", "On Hold", "Disputed", "In Process")
