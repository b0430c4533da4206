"""Demo data for the local run: about a hundred real books, a staff user and a member."""

from __future__ import annotations

import random
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from library_service.models import Book

# (title, author, year)
DEMO_BOOKS: list[tuple[str, str, int]] = [
    ("Pride and Prejudice", "Jane Austen", 1813),
    ("Emma", "Jane Austen", 1815),
    ("Persuasion", "Jane Austen", 1817),
    ("Sense and Sensibility", "Jane Austen", 1811),
    ("Jane Eyre", "Charlotte Brontë", 1847),
    ("Wuthering Heights", "Emily Brontë", 1847),
    ("Middlemarch", "George Eliot", 1871),
    ("Great Expectations", "Charles Dickens", 1861),
    ("Bleak House", "Charles Dickens", 1853),
    ("A Tale of Two Cities", "Charles Dickens", 1859),
    ("David Copperfield", "Charles Dickens", 1850),
    ("Vanity Fair", "William Makepeace Thackeray", 1848),
    ("Moby-Dick", "Herman Melville", 1851),
    ("The Scarlet Letter", "Nathaniel Hawthorne", 1850),
    ("Adventures of Huckleberry Finn", "Mark Twain", 1884),
    ("The Adventures of Tom Sawyer", "Mark Twain", 1876),
    ("Little Women", "Louisa May Alcott", 1868),
    ("The Portrait of a Lady", "Henry James", 1881),
    ("The Age of Innocence", "Edith Wharton", 1920),
    ("The Great Gatsby", "F. Scott Fitzgerald", 1925),
    ("Tender Is the Night", "F. Scott Fitzgerald", 1934),
    ("The Sun Also Rises", "Ernest Hemingway", 1926),
    ("A Farewell to Arms", "Ernest Hemingway", 1929),
    ("The Old Man and the Sea", "Ernest Hemingway", 1952),
    ("The Sound and the Fury", "William Faulkner", 1929),
    ("As I Lay Dying", "William Faulkner", 1930),
    ("The Grapes of Wrath", "John Steinbeck", 1939),
    ("Of Mice and Men", "John Steinbeck", 1937),
    ("East of Eden", "John Steinbeck", 1952),
    ("To Kill a Mockingbird", "Harper Lee", 1960),
    ("The Catcher in the Rye", "J. D. Salinger", 1951),
    ("Invisible Man", "Ralph Ellison", 1952),
    ("Beloved", "Toni Morrison", 1987),
    ("Song of Solomon", "Toni Morrison", 1977),
    ("Their Eyes Were Watching God", "Zora Neale Hurston", 1937),
    ("Native Son", "Richard Wright", 1940),
    ("Catch-22", "Joseph Heller", 1961),
    ("Slaughterhouse-Five", "Kurt Vonnegut", 1969),
    ("On the Road", "Jack Kerouac", 1957),
    ("Lolita", "Vladimir Nabokov", 1955),
    ("Pale Fire", "Vladimir Nabokov", 1962),
    ("The Road", "Cormac McCarthy", 2006),
    ("Blood Meridian", "Cormac McCarthy", 1985),
    ("Gilead", "Marilynne Robinson", 2004),
    ("The Remains of the Day", "Kazuo Ishiguro", 1989),
    ("Never Let Me Go", "Kazuo Ishiguro", 2005),
    ("Atonement", "Ian McEwan", 2001),
    ("Wolf Hall", "Hilary Mantel", 2009),
    ("Midnight's Children", "Salman Rushdie", 1981),
    ("The God of Small Things", "Arundhati Roy", 1997),
    ("Things Fall Apart", "Chinua Achebe", 1958),
    ("Half of a Yellow Sun", "Chimamanda Ngozi Adichie", 2006),
    ("One Hundred Years of Solitude", "Gabriel García Márquez", 1967),
    ("Love in the Time of Cholera", "Gabriel García Márquez", 1985),
    ("The House of the Spirits", "Isabel Allende", 1982),
    ("Ficciones", "Jorge Luis Borges", 1944),
    ("Don Quixote", "Miguel de Cervantes", 1605),
    ("War and Peace", "Leo Tolstoy", 1869),
    ("Anna Karenina", "Leo Tolstoy", 1878),
    ("Crime and Punishment", "Fyodor Dostoevsky", 1866),
    ("The Brothers Karamazov", "Fyodor Dostoevsky", 1880),
    ("The Idiot", "Fyodor Dostoevsky", 1869),
    ("Dead Souls", "Nikolai Gogol", 1842),
    ("Fathers and Sons", "Ivan Turgenev", 1862),
    ("The Master and Margarita", "Mikhail Bulgakov", 1967),
    ("Doctor Zhivago", "Boris Pasternak", 1957),
    ("Madame Bovary", "Gustave Flaubert", 1857),
    ("Les Misérables", "Victor Hugo", 1862),
    ("The Count of Monte Cristo", "Alexandre Dumas", 1844),
    ("The Red and the Black", "Stendhal", 1830),
    ("In Search of Lost Time", "Marcel Proust", 1913),
    ("The Stranger", "Albert Camus", 1942),
    ("The Plague", "Albert Camus", 1947),
    ("The Trial", "Franz Kafka", 1925),
    ("The Metamorphosis", "Franz Kafka", 1915),
    ("The Magic Mountain", "Thomas Mann", 1924),
    ("Buddenbrooks", "Thomas Mann", 1901),
    ("Steppenwolf", "Hermann Hesse", 1927),
    ("Siddhartha", "Hermann Hesse", 1922),
    ("The Tin Drum", "Günter Grass", 1959),
    ("The Name of the Rose", "Umberto Eco", 1980),
    ("If on a Winter's Night a Traveler", "Italo Calvino", 1979),
    ("The Leopard", "Giuseppe Tomasi di Lampedusa", 1958),
    ("Ulysses", "James Joyce", 1922),
    ("Dubliners", "James Joyce", 1914),
    ("Mrs Dalloway", "Virginia Woolf", 1925),
    ("To the Lighthouse", "Virginia Woolf", 1927),
    ("Nineteen Eighty-Four", "George Orwell", 1949),
    ("Animal Farm", "George Orwell", 1945),
    ("Brave New World", "Aldous Huxley", 1932),
    ("Lord of the Flies", "William Golding", 1954),
    ("Frankenstein", "Mary Shelley", 1818),
    ("Dracula", "Bram Stoker", 1897),
    ("The Picture of Dorian Gray", "Oscar Wilde", 1890),
    ("Heart of Darkness", "Joseph Conrad", 1899),
    ("The Hobbit", "J. R. R. Tolkien", 1937),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", 1969),
    ("Dune", "Frank Herbert", 1965),
    ("Fahrenheit 451", "Ray Bradbury", 1953),
    ("The Handmaid's Tale", "Margaret Atwood", 1985),
    ("Norwegian Wood", "Haruki Murakami", 1987),
    ("Snow Country", "Yasunari Kawabata", 1948),
]

FEES = [Decimal(f"{cents / 100:.2f}") for cents in range(50, 301, 25)]


def demo_books(seed: int = 1) -> list[Book]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not security
    return [
        Book(
            title=title,
            author=author,
            year=year,
            cover=rng.choice(["HARD", "SOFT"]),
            inventory=rng.randint(1, 6),
            daily_fee=rng.choice(FEES),
        )
        for title, author, year in DEMO_BOOKS
    ]


async def seed_books(session: AsyncSession) -> int:
    """Add the demo books unless the catalogue already has books; the number added."""
    if await session.scalar(select(func.count()).select_from(Book)):
        return 0
    books = demo_books()
    session.add_all(books)
    await session.flush()
    return len(books)
