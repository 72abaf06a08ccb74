/* placeholder, replaced by ckptctl */
int main(void)
{
	return 1;
}
