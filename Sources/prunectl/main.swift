// prunectl: placeholder until the CLI lands.
print("prunectl")
