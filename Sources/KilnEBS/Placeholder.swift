import KilnAWS
