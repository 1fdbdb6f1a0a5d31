"""The words and numbers sample rows are made of: brands, cities, names, streets, start hours."""

MAINSTREAM_BRANDS = (
    "Toyota",
    "Honda",
    "Ford",
    "Chevrolet",
    "Nissan",
    "Hyundai",
    "Kia",
    "Volkswagen",
)
LUXURY_BRANDS = ("BMW", "Mercedes-Benz", "Audi", "Tesla")
CITIES = (  # city, state, latitude, longitude, ZIP prefix, area code
    ("New York", "NY", 40.7128, -74.0060, "100", "212"),
    ("Boston", "MA", 42.3601, -71.0589, "021", "617"),
    ("Newark", "NJ", 40.7357, -74.1724, "071", "973"),
    ("Chicago", "IL", 41.8781, -87.6298, "606", "312"),
    ("Miami", "FL", 25.7617, -80.1918, "331", "305"),
    ("Houston", "TX", 29.7604, -95.3698, "770", "713"),
    ("Phoenix", "AZ", 33.4484, -112.0740, "850", "602"),
    ("Los Angeles", "CA", 34.0522, -118.2437, "900", "213"),
    ("San Francisco", "CA", 37.7749, -122.4194, "941", "415"),
    ("Seattle", "WA", 47.6062, -122.3321, "981", "206"),
)
FIRST_NAMES = (
    "James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
    "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Carlos", "Karen", "Daniel", "Nancy", "Wei", "Lisa", "Ahmed", "Priya", "Mateo", "Sofia",
    "Hiroshi", "Olga", "Kwame", "Ana", "Noah", "Emma", "Liam", "Olivia",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Lewis", "Robinson", "Walker", "Nguyen", "Kim", "Patel", "O'Brien", "Chen", "Cohen",
)  # fmt: skip
STREETS = (
    "Main St", "Broadway", "Oak Ave", "Maple St", "Washington Blvd", "Park Ave", "2nd St",
    "Market St", "Elm St", "Lake Shore Dr", "Sunset Blvd", "Harbor Way", "Airport Rd",
)  # fmt: skip
PLACES = (
    "Airport", "Downtown", "Central Station", "Midtown", "Harbor", "University",
    "Convention Center", "Uptown", "Riverside", "Old Town", "Stadium", "Business Park",
)  # fmt: skip
LICENSE_TYPES = ("FOR HIRE VEHICLE", "LIVERY", "BLACK CAR", "LUXURY", "COMMUTER VAN")
COMPANY_SUFFIXES = ("TRANSPORT LLC", "LEASING INC", "CAR SERVICE CORP", "MOBILITY LLC")
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "example.com")
START_HOUR_WEIGHTS = (
    1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 3.0, 2.6, 2.6,
    2.8, 2.7, 2.6, 2.8, 3.2, 3.8, 3.6, 3.0, 2.5, 2.0, 1.6, 1.2,
)  # fmt: skip
