"""Demo data for the local run: about a hundred real books, a staff user and a member."""

from __future__ import annotations

import random
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.models import Book

# (title, author, year of first publication, ISBN-13 of one real edition on the shelf)
DEMO_BOOKS: list[tuple[str, str, int, str]] = [
    ("Pride and Prejudice", "Jane Austen", 1813, "9780679783268"),
    ("Emma", "Jane Austen", 1815, "9780141439587"),
    ("Persuasion", "Jane Austen", 1817, "9780192802637"),
    ("Sense and Sensibility", "Jane Austen", 1811, "9780141439662"),
    ("Jane Eyre", "Charlotte Brontë", 1847, "9780142437209"),
    ("Wuthering Heights", "Emily Brontë", 1847, "9780393978896"),
    ("Middlemarch", "George Eliot", 1871, "9780451529176"),
    ("Great Expectations", "Charles Dickens", 1861, "9780192833594"),
    ("Bleak House", "Charles Dickens", 1853, "9780143037613"),
    ("A Tale of Two Cities", "Charles Dickens", 1859, "9780141439600"),
    ("David Copperfield", "Charles Dickens", 1850, "9780140439441"),
    ("Vanity Fair", "William Makepeace Thackeray", 1848, "9780141439839"),
    ("Moby-Dick", "Herman Melville", 1851, "9780142437247"),
    ("The Scarlet Letter", "Nathaniel Hawthorne", 1850, "9780142437261"),
    ("Adventures of Huckleberry Finn", "Mark Twain", 1884, "9780142437179"),
    ("The Adventures of Tom Sawyer", "Mark Twain", 1876, "9780143039563"),
    ("Little Women", "Louisa May Alcott", 1868, "9780451529305"),
    ("The Portrait of a Lady", "Henry James", 1881, "9780141439631"),
    ("The Age of Innocence", "Edith Wharton", 1920, "9781593081430"),
    ("The Great Gatsby", "F. Scott Fitzgerald", 1925, "9780743273565"),
    ("Tender Is the Night", "F. Scott Fitzgerald", 1934, "9780684801544"),
    ("The Sun Also Rises", "Ernest Hemingway", 1926, "9780743297332"),
    ("A Farewell to Arms", "Ernest Hemingway", 1929, "9780099910107"),
    ("The Old Man and the Sea", "Ernest Hemingway", 1952, "9780684830490"),
    ("The Sound and the Fury", "William Faulkner", 1929, "9780679732242"),
    ("As I Lay Dying", "William Faulkner", 1930, "9780679732259"),
    ("The Grapes of Wrath", "John Steinbeck", 1939, "9780142000663"),
    ("Of Mice and Men", "John Steinbeck", 1937, "9780142000670"),
    ("East of Eden", "John Steinbeck", 1952, "9780142000656"),
    ("To Kill a Mockingbird", "Harper Lee", 1960, "9780061120084"),
    ("The Catcher in the Rye", "J. D. Salinger", 1951, "9780316769174"),
    ("Invisible Man", "Ralph Ellison", 1952, "9780679732761"),
    ("Beloved", "Toni Morrison", 1987, "9781400033416"),
    ("Song of Solomon", "Toni Morrison", 1977, "9781400033423"),
    ("Their Eyes Were Watching God", "Zora Neale Hurston", 1937, "9780061120060"),
    ("Native Son", "Richard Wright", 1940, "9780060837563"),
    ("Catch-22", "Joseph Heller", 1961, "9780684833392"),
    ("Slaughterhouse-Five", "Kurt Vonnegut", 1969, "9780385333849"),
    ("On the Road", "Jack Kerouac", 1957, "9780140042597"),
    ("Lolita", "Vladimir Nabokov", 1955, "9780679723165"),
    ("Pale Fire", "Vladimir Nabokov", 1962, "9780141185262"),
    ("The Road", "Cormac McCarthy", 2006, "9780307265432"),
    ("Blood Meridian", "Cormac McCarthy", 1985, "9780679728757"),
    ("Gilead", "Marilynne Robinson", 2004, "9780312424404"),
    ("The Remains of the Day", "Kazuo Ishiguro", 1989, "9780571225385"),
    ("Never Let Me Go", "Kazuo Ishiguro", 2005, "9781400078776"),
    ("Atonement", "Ian McEwan", 2001, "9780385721790"),
    ("Wolf Hall", "Hilary Mantel", 2009, "9780007230204"),
    ("Midnight's Children", "Salman Rushdie", 1981, "9780099578512"),
    ("The God of Small Things", "Arundhati Roy", 1997, "9780679457312"),
    ("Things Fall Apart", "Chinua Achebe", 1958, "9780385474542"),
    ("Half of a Yellow Sun", "Chimamanda Ngozi Adichie", 2006, "9781400044160"),
    ("One Hundred Years of Solitude", "Gabriel García Márquez", 1967, "9780060531041"),
    ("Love in the Time of Cholera", "Gabriel García Márquez", 1985, "9781400034680"),
    ("The House of the Spirits", "Isabel Allende", 1982, "9780553383805"),
    ("Ficciones", "Jorge Luis Borges", 1944, "9780802130303"),
    ("Don Quixote", "Miguel de Cervantes", 1605, "9780142437230"),
    ("War and Peace", "Leo Tolstoy", 1869, "9780192833983"),
    ("Anna Karenina", "Leo Tolstoy", 1878, "9780345803924"),
    ("Crime and Punishment", "Fyodor Dostoevsky", 1866, "9780143058144"),
    ("The Brothers Karamazov", "Fyodor Dostoevsky", 1880, "9780374528379"),
    ("The Idiot", "Fyodor Dostoevsky", 1869, "9780679642428"),
    ("Dead Souls", "Nikolai Gogol", 1842, "9780140448078"),
    ("Fathers and Sons", "Ivan Turgenev", 1862, "9780451529695"),
    ("The Master and Margarita", "Mikhail Bulgakov", 1967, "9780679760801"),
    ("Doctor Zhivago", "Boris Pasternak", 1957, "9780679774389"),
    ("Madame Bovary", "Gustave Flaubert", 1857, "9780192840394"),
    ("Les Misérables", "Victor Hugo", 1862, "9780451525260"),
    ("The Count of Monte Cristo", "Alexandre Dumas", 1844, "9780140449266"),
    ("The Red and the Black", "Stendhal", 1830, "9780140447644"),
    ("Swann's Way", "Marcel Proust", 1913, "9780142437964"),
    ("The Stranger", "Albert Camus", 1942, "9780679720201"),
    ("The Plague", "Albert Camus", 1947, "9780679720218"),
    ("The Trial", "Franz Kafka", 1925, "9780099428640"),
    ("The Metamorphosis", "Franz Kafka", 1915, "9780553213690"),
    ("The Magic Mountain", "Thomas Mann", 1924, "9780679772873"),
    ("Buddenbrooks", "Thomas Mann", 1901, "9780679417378"),
    ("Steppenwolf", "Hermann Hesse", 1927, "9780140282580"),
    ("Siddhartha", "Hermann Hesse", 1922, "9780553208849"),
    ("The Tin Drum", "Günter Grass", 1959, "9780099483502"),
    ("The Name of the Rose", "Umberto Eco", 1980, "9780156001311"),
    ("If on a Winter's Night a Traveler", "Italo Calvino", 1979, "9780156439619"),
    ("The Leopard", "Giuseppe Tomasi di Lampedusa", 1958, "9780679731214"),
    ("Ulysses", "James Joyce", 1922, "9780679722762"),
    ("Dubliners", "James Joyce", 1914, "9780192839992"),
    ("Mrs Dalloway", "Virginia Woolf", 1925, "9780151009985"),
    ("To the Lighthouse", "Virginia Woolf", 1927, "9781406792393"),
    ("Nineteen Eighty-Four", "George Orwell", 1949, "9780451524935"),
    ("Animal Farm", "George Orwell", 1945, "9780452284241"),
    ("Brave New World", "Aldous Huxley", 1932, "9780060929879"),
    ("Lord of the Flies", "William Golding", 1954, "9780140283334"),
    ("Frankenstein", "Mary Shelley", 1818, "9780141439471"),
    ("Dracula", "Bram Stoker", 1897, "9780393970128"),
    ("The Picture of Dorian Gray", "Oscar Wilde", 1890, "9780375751516"),
    ("Heart of Darkness", "Joseph Conrad", 1899, "9781892295491"),
    ("The Hobbit", "J. R. R. Tolkien", 1937, "9780618260300"),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", 1969, "9780441007318"),
    ("Dune", "Frank Herbert", 1965, "9780340839935"),
    ("Fahrenheit 451", "Ray Bradbury", 1953, "9781451673319"),
    ("The Handmaid's Tale", "Margaret Atwood", 1985, "9780385490818"),
    ("Norwegian Wood", "Haruki Murakami", 1987, "9780375704024"),
    ("Snow Country", "Yasunari Kawabata", 1948, "9780679761044"),
]

FEES = [Decimal(f"{cents / 100:.2f}") for cents in range(50, 301, 25)]


def demo_books(seed: int = 1) -> list[Book]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    return [
        Book(
            title=title,
            author=author,
            year=year,
            isbn=isbn,
            cover=rng.choice(["HARD", "SOFT"]),
            inventory=rng.randint(1, 6),
            daily_fee=rng.choice(FEES),
        )
        for title, author, year, isbn in DEMO_BOOKS
    ]


async def seed_books(session: AsyncSession) -> int:
    """Add the demo books unless the catalogue already has books; the number added."""
    if await session.scalar(select(func.count()).select_from(Book)):
        return 0
    books = demo_books()
    session.add_all(books)
    await session.flush()
    return len(books)
