"""erpsync: Amazon Seller Central (SP-API) <-> Sage 500 ERP integration middleware."""

__version__ = "0.1.0"
