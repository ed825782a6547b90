import ArgumentParser

await Kiln.runMain()
